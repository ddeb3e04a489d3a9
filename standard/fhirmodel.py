"""What FHIR R4 says about an element path: is it a list, a choice, a primitive, and its type.

Read from the fhir.resources R4B models, which match R4 element for element for the resources we use.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache

from fhir.resources.R4B import get_fhir_model_class

PRIMITIVES = {
    "String": "string", "Code": "code", "Uri": "uri", "Url": "url", "Canonical": "canonical", "Id": "id",
    "Date": "date", "DateTime": "dateTime", "Instant": "instant", "Boolean": "boolean", "Integer": "integer",
    "Decimal": "decimal", "Markdown": "markdown", "UnsignedInt": "unsignedInt", "PositiveInt": "positiveInt",
    "Time": "time", "Base64Binary": "base64Binary", "Oid": "oid", "Uuid": "uuid", "Xhtml": "xhtml",
}

_BUILTINS = {"bool": "boolean", "int": "integer", "str": "string", "float": "decimal"}


@dataclass(frozen=True)
class ElementInfo:
    """Facts about one element of a FHIR type."""

    name: str
    is_list: bool
    type_name: str  # FHIR type: "CodeableConcept", "Reference", "string", "EncounterLocation", ...
    choice_of: str | None  # "event" for eventCoding
    required: bool

    @property
    def is_primitive(self) -> bool:
        return self.type_name[:1].islower()

    @property
    def fhir_type(self) -> str:
        """The type code as a StructureDefinition writes it (backbone elements are BackboneElement)."""
        if self.is_primitive:
            return self.type_name
        try:
            cls = get_fhir_model_class(self.type_name)
        except KeyError:
            return self.type_name
        bases = {b.__name__ for b in cls.__mro__}
        return "BackboneElement" if "BackboneElement" in bases else self.type_name


def _type_name(annotation: typing.Any) -> tuple[bool, str]:
    inner = annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = next(a for a in typing.get_args(annotation) if a is not type(None))
    is_list = typing.get_origin(inner) in (list, typing.List)  # noqa: UP006 - the models use typing.List
    if is_list:
        inner = typing.get_args(inner)[0]
    metadata = getattr(inner, "__metadata__", None)
    if metadata:  # primitives are Annotated[str, Code()] and the like
        name = type(metadata[0]).__name__
        return is_list, PRIMITIVES.get(name, name[:1].lower() + name[1:])
    name = getattr(inner, "__name__", str(inner))
    if name in _BUILTINS:
        return is_list, _BUILTINS[name]
    if name.endswith("Type"):
        name = name[: -len("Type")]
    return is_list, PRIMITIVES.get(name, name)


@cache
def element(type_name: str, name: str) -> ElementInfo:
    """Describe element `name` of FHIR type `type_name`.

    Raises:
        KeyError: when the type has no such element (a mistake in a profile definition).
    """
    cls = get_fhir_model_class(type_name)
    field_name = name if name in cls.model_fields else f"{name}__ext"
    if name not in cls.model_fields:
        # Python keywords are suffixed with "_fhir" in the models ("class", "for").
        field_name = f"{name}_fhir"
    if field_name not in cls.model_fields:
        raise KeyError(f"{type_name} has no element {name!r}")
    field = cls.model_fields[field_name]
    extra = field.json_schema_extra or {}
    is_list, type_ = _type_name(field.annotation)
    return ElementInfo(
        name=name,
        is_list=is_list,
        type_name=type_,
        choice_of=extra.get("one_of_many"),
        required=bool(extra.get("element_required") or extra.get("one_of_many_required")),
    )


def walk(resource_type: str, path: str) -> list[ElementInfo]:
    """Describe each step of a dotted path below a resource type (slice names after ':' are ignored)."""
    infos = []
    current = resource_type
    for step in path.split("."):
        info = element(current, step.split(":")[0])
        infos.append(info)
        current = info.type_name
    return infos
