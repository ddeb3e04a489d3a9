"""Layer 3: FHIR R4 base rules, in one fast walk over the message (the router runs it on every message).

What it checks, for every object of the message, against the element definitions of the FHIR R4 types (read
once per type from the fhir.resources models, the same definitions the reference layer validates with):
- every key is an element of the type (or its ``_element`` primitive extension); ``resourceType`` only on resources;
- lists where FHIR has lists and single values where it has one, never an empty array, object or string, never null
  (except a null lining a primitive array up with its ``_element`` twin);
- elements FHIR requires (``Narrative.div``, ``Bundle.type``, ``MessageHeader.source``, ...), and at most one of a
  choice (``value[x]``); the resource types of ``Bundle.entry.resource`` and ``contained``;
- primitive formats: JSON type, FHIR regex and calendar for date, dateTime and instant (time zone mandatory with a
  time; 2019-02-30 refused), time, id, code, uri, url, oid, uuid, base64Binary, integer ranges, booleans, and
  strings non-empty and at most FHIR's 1,048,576 characters.

It is at least as strict as the fhir.resources models (the "structure" layer, which full validation keeps as a
reference): tests/unit/standard/test_one_verdict.py runs the case suite and over a thousand mutants through both
and requires the same verdict and the same finding codes. It is stricter where the models are lax and FHIR is not
(``"5"`` for an integer, whitespace in a uri, an empty array).

The standard forbids ``contained`` resources (a child hidden inside another resource escapes routing's view):
``contained-not-allowed``, while the contained resource is still checked as FHIR.
"""

from __future__ import annotations

import base64
import binascii
import re
import typing
from collections.abc import Iterator
from datetime import date
from functools import cache

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import Date, DateTime, Instant, Time
from pydantic_core import SchemaValidator, ValidationError, core_schema

from standard.fhirmodel import PRIMITIVES
from standard.validator import fhir_speedups
from standard.validator.findings import Finding
from standard.validator.locations import fhirpath

# This layer reads the model classes' element definitions; install the reference layer's speed-up before the
# first model module is imported, or it can no longer be installed (see fhir_speedups).
fhir_speedups.install()

MAX_STRING = 1024 * 1024  # FHIR R4: strings SHALL NOT exceed 1,048,576 characters

# R4B added these; a message that carries one is not R4.
NOT_IN_R4 = frozenset({"SubscriptionTopic", "SubscriptionStatus", "Citation", "EvidenceReport", "NutritionProduct",
                       "AdministrableProductDefinition", "ClinicalUseDefinition", "Ingredient",
                       "ManufacturedItemDefinition", "PackagedProductDefinition", "RegulatedAuthorization"})

_STRING, _PRIMITIVE, _COMPLEX, _RESOURCE, _EXTENSION = 0, 1, 2, 3, 4


class _Type(typing.NamedTuple):
    fields: dict[str, tuple[int, typing.Any, bool]]  # json name -> (kind, checker or type name, is list)
    required: tuple[str, ...]
    choices: tuple[tuple[str, ...], ...]  # the json names of each choice element (value[x])
    choice_keys: frozenset[str]  # every json name of every choice
    required_choices: tuple[tuple[str, ...], ...]  # choices of which one must be given
    is_resource: bool


def _primitive_name(annotation: typing.Any) -> str | None:
    """The FHIR primitive type of a model field annotation, or None for a complex type."""
    inner = annotation
    while True:
        metadata = getattr(inner, "__metadata__", None)
        if metadata is not None:  # primitives are Annotated[str, Code()] and the like
            for meta in metadata:
                if type(meta).__name__ == "UuidVersion":
                    return "uuid"
                if type(meta).__name__ in PRIMITIVES:
                    return PRIMITIVES[type(meta).__name__]
            raise ValueError(f"no FHIR primitive type in {annotation}")
        if inner is bool:
            return "boolean"
        args = [a for a in typing.get_args(inner) if a is not type(None)]
        if not args:
            return None
        inner = args[0]


def _complex_name(annotation: typing.Any) -> str:
    inner = annotation
    while typing.get_args(inner):
        inner = next(a for a in typing.get_args(inner) if a is not type(None))
    name = getattr(inner, "__name__", str(inner))
    return name[: -len("Type")] if name.endswith("Type") else name


def _is_list(annotation: typing.Any) -> bool:
    inner = annotation
    if typing.get_origin(inner) is not list:
        inner = next((a for a in typing.get_args(inner) if a is not type(None)), inner)
    return typing.get_origin(inner) is list


@cache
def _type(type_name: str) -> _Type:
    cls = get_fhir_model_class(type_name)
    fields: dict[str, tuple[int, typing.Any, bool]] = {}
    required: list[str] = []
    choices: dict[str, tuple[list[str], bool]] = {}
    for name, field in cls.model_fields.items():
        if name == "fhir_comments":
            continue  # a DSTU2 relic the models still accept; R4 JSON has no such element
        json_name = field.alias or name
        is_list = _is_list(field.annotation)
        if name.endswith("__ext"):
            fields[json_name] = (_EXTENSION, "FHIRPrimitiveExtension", is_list)
            continue
        primitive = _primitive_name(field.annotation)
        if primitive is not None:
            fields[json_name] = (_STRING if primitive in ("string", "markdown") else _PRIMITIVE, _CHECKS[primitive],
                                 is_list)
        else:
            complex_name = _complex_name(field.annotation)
            kind = _RESOURCE if complex_name == "Resource" else _COMPLEX
            fields[json_name] = (kind, complex_name, is_list)
        extra = field.json_schema_extra or {}
        if extra.get("element_required") or field.is_required():
            required.append(json_name)
        group = extra.get("one_of_many")
        if group:
            names, _ = choices.setdefault(group, ([], bool(extra.get("one_of_many_required"))))
            names.append(json_name)
    spec = _Type(fields, tuple(required), tuple(tuple(n) for n, _ in choices.values()),
                 frozenset(n for names, _ in choices.values() for n in names),
                 tuple(tuple(n) for n, r in choices.values() if r), bool(cls.has_resource_base()))
    _TYPES[type_name] = spec
    return spec


_TYPES: dict[str, _Type] = {}  # the same as _type's cache, read without a function call in the walk


@cache
def is_resource_type(name: str) -> bool:
    """Whether `name` is a FHIR R4 resource type."""
    if name in NOT_IN_R4 or not name[:1].isupper():
        return False
    try:
        return _type(name).is_resource
    except (ValueError, KeyError, AttributeError):
        return False


# -- primitives: each returns None when the value is good, else what is wrong (never the value) -----------------

def _string(value) -> str | None:
    if value.__class__ is not str:
        return "must be a JSON string"
    if not value or value.isspace():
        return "must not be empty or only whitespace (FHIR forbids empty values)"
    if len(value) > MAX_STRING:
        return f"is longer than FHIR's limit of {MAX_STRING:,} characters; send large content as an attachment"
    return None


def _pattern(regex: str, what: str):
    compiled = re.compile(regex)

    def check(value) -> str | None:
        if value.__class__ is str and len(value) <= MAX_STRING and compiled.fullmatch(value):
            return None  # the pattern also rules out empty and whitespace-only values
        return _string(value) or f"is not a valid FHIR {what}"
    return check


_url_validator = SchemaValidator(core_schema.url_schema())
_URL_PATH = re.compile(r"^/(?P<resourceType>[^\s?/]+)(/[^\s?/]+)*")
_NO_SPACE = re.compile(r"\S+")


def _url(value) -> str | None:
    problem = _string(value)
    if problem:
        return problem
    if not _NO_SPACE.fullmatch(value):
        return "is not a valid FHIR url (no whitespace allowed)"
    try:
        _url_validator.validate_python(value)
        return None
    except ValidationError:
        pass
    # The models also accept a relative path (Patient/123): so does the exchange, to give the same verdict.
    matched = _URL_PATH.match(value if value.startswith("/") else "/" + value)
    if matched and re.match(r"^[A-Za-z0-9\-.#]+$", matched.group("resourceType")):
        return None
    return "is not a valid FHIR url"


_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_uuid4_validator = SchemaValidator(core_schema.uuid_schema(version=4))


def _uuid(value) -> str | None:
    problem = _string(value)
    if problem:
        return problem
    if not _UUID.fullmatch(value):
        return "is not a valid FHIR uuid (urn:uuid: and lower-case hex)"
    try:  # the models take only version 4 UUIDs here: so does the exchange, to give the same verdict
        _uuid4_validator.validate_python(value)
    except ValidationError:
        return "is not a version 4 UUID"
    return None


def _calendar(value: str) -> bool:
    """True when the date part of a date, dateTime or instant is a real day (2019-02-30 is not)."""
    if len(value) < 10:
        return True
    try:
        date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def _temporal(compiled: re.Pattern, what: str):
    def check(value) -> str | None:
        if value.__class__ is not str:
            return "must be a JSON string"
        if not compiled.fullmatch(value):
            hint = " with a time zone (Z or +hh:mm) when it has a time" if what != "date" else ""
            if what == "instant":
                hint = " with seconds and a time zone (Z or +hh:mm)"
            return f"is not a valid FHIR {what}{hint}"
        if not _calendar(value):
            return f"is not a valid FHIR {what}: no such day in the calendar"
        return None
    return check


def _time(value) -> str | None:
    if value.__class__ is not str:
        return "must be a JSON string"
    return None if Time.pattern.fullmatch(value) else "is not a valid FHIR time (hh:mm:ss, no time zone)"


def _boolean(value) -> str | None:
    return None if value is True or value is False else "must be JSON true or false"


def _integer(low: int):
    def check(value) -> str | None:
        if value.__class__ is not int:
            return "must be a JSON whole number"
        if not low <= value <= 2_147_483_647:
            return f"must be between {low} and 2147483647"
        return None
    return check


def _decimal(value) -> str | None:
    return None if value.__class__ in (int, float) else "must be a JSON number"


_BASE64 = re.compile(r"^(\s*([0-9a-zA-Z+/=]){4}\s*)+$")


def _base64(value) -> str | None:
    problem = _string(value)
    if problem:
        return problem
    if not _BASE64.fullmatch(value):
        return "is not valid base64"
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    return None


def _xhtml(value) -> str | None:
    problem = _string(value)
    if problem:
        return problem
    return None if value.lstrip().startswith("<div") else "must be XHTML whose root is a <div> element"


_CHECKS = {
    "string": _string, "markdown": _string, "xhtml": _xhtml,
    "code": _pattern(r"[^\s]+(\s[^\s]+)*", "code (no leading, trailing or double whitespace)"),
    "id": _pattern(r"[A-Za-z0-9\-.]{1,64}", "id (1 to 64 letters, digits, '-' or '.')"),
    "uri": _pattern(r"\S+", "uri (no whitespace allowed)"),
    "canonical": _pattern(r"\S+", "canonical (no whitespace allowed)"),
    "url": _url,
    "oid": _pattern(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+", "oid"),
    "uuid": _uuid,
    "base64Binary": _base64,
    "date": _temporal(Date.pattern, "date"), "dateTime": _temporal(DateTime.pattern, "dateTime"),
    "instant": _temporal(Instant.pattern, "instant"), "time": _time,
    "boolean": _boolean, "integer": _integer(-2_147_483_648), "unsignedInt": _integer(0),
    "positiveInt": _integer(1), "decimal": _decimal,
}


# -- the walk ------------------------------------------------------------------------------------------------------

Problem = tuple[str, list, str]  # (code, JSON path, message)


def _check_resource(value, path: list, out: list[Problem]) -> None:
    if value.__class__ is not dict:
        out.append(("fhir-structure", path, "must be a JSON object (a FHIR resource)"))
        return
    rtype = value.get("resourceType")
    if rtype.__class__ is not str or not is_resource_type(rtype):
        out.append(("fhir-structure", [*path, "resourceType"], "not a FHIR R4 resource type"))
        return
    _check_object(value, rtype, path, out)


def _check_object(obj: dict, type_name: str, path: list, out: list[Problem]) -> None:
    # The hot loop of the router's validation: written for speed (no helper calls for the common cases).
    spec = _TYPES.get(type_name) or _type(type_name)
    fields = spec.fields
    if not obj:
        out.append(("fhir-structure", path, "must not be an empty object; leave the element out"))
        return
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            if key == "resourceType" and spec.is_resource:
                continue
            out.append(("fhir-structure", [*path, key], f"is not an element of FHIR R4 {type_name}; remove it "
                        "or carry it in an extension"))
            continue
        kind, sub, is_list = field
        cls = value.__class__
        if not is_list:
            if kind == _STRING:
                if cls is str and value and len(value) <= MAX_STRING and not value.isspace():
                    continue
            elif kind == _PRIMITIVE:
                if cls is not list and value is not None:
                    problem = sub(value)
                    if problem:
                        out.append(("fhir-structure", [*path, key], problem))
                    continue
            elif kind == _COMPLEX and cls is dict:
                _check_object(value, sub, [*path, key], out)
                continue
            if cls is list:
                out.append(("fhir-structure", [*path, key], "must be a single value, not an array"))
            elif value is None:
                out.append(("fhir-structure", [*path, key], "must not be null; leave the element out"))
            else:
                _check_value(kind, sub, value, [*path, key], out)
            continue
        if cls is not list:
            out.append(("fhir-structure", [*path, key], "must be a JSON array"))
            continue
        if not value:
            out.append(("fhir-structure", [*path, key], "must not be an empty array; leave the element out"))
            continue
        if kind == _RESOURCE and key == "contained" and spec.is_resource:
            out.append(("contained-not-allowed", [*path, key], "contained resources are not allowed in messages "
                        "of the exchange; send each resource as its own entry of the Bundle"))
        twins = obj.get("_" + key) if kind <= _PRIMITIVE else None
        for i, item in enumerate(value):
            if item is None:
                if kind == _EXTENSION or (twins.__class__ is list and i < len(twins) and twins[i] is not None):
                    continue
                out.append(("fhir-structure", [*path, key, i], "must not be null"))
            elif kind == _COMPLEX and item.__class__ is dict:
                _check_object(item, sub, [*path, key, i], out)
            else:
                _check_value(kind, sub, item, [*path, key, i], out)
    for name in spec.required:
        if name not in obj and not _extended(obj.get("_" + name)):
            out.append(("fhir-structure", [*path, name], f"is required by FHIR R4 in {type_name}; add it"))
    if spec.choice_keys and not spec.choice_keys.isdisjoint(obj):
        for names in spec.choices:
            present = [n for n in names if n in obj]
            if len(present) > 1:
                out.append(("fhir-structure", [*path, present[1]], "only one type of a choice element may be given"))
    for names in spec.required_choices:
        if not any(n in obj for n in names):
            out.append(("fhir-structure", path, f"needs one of {', '.join(names)}"))


def _check_value(kind: int, sub, value, path: list, out: list[Problem]) -> None:
    if kind <= _PRIMITIVE:
        problem = sub(value)
        if problem:
            out.append(("fhir-structure", path, problem))
    elif kind == _RESOURCE:
        _check_resource(value, path, out)
    elif value.__class__ is not dict:
        out.append(("fhir-structure", path, "must be a JSON object"))
    else:
        _check_object(value, sub, path, out)


def _extended(twin) -> bool:
    """A required primitive may be absent when its ``_element`` twin carries an extension (FHIR's data-absent)."""
    return twin.__class__ is dict and bool(twin.get("extension"))


def problems(doc: dict) -> list[Problem]:
    """Every breach of the FHIR R4 base rules in a message (a Bundle), with its JSON path."""
    out: list[Problem] = []
    if doc.get("resourceType") != "Bundle":
        out.append(("fhir-structure", ["resourceType"], "a message must be a FHIR Bundle"))
        return out
    _check_object(doc, "Bundle", [], out)
    return out


def findings(doc: dict) -> Iterator[Finding]:
    """The layer's findings: none when the fast schema accepts the message, else the walk's."""
    from standard.validator import fhir_fast  # it builds on this module's element definitions

    if fhir_fast.accepts(doc):
        return
    for code, path, message in problems(doc):
        yield Finding(code, fhirpath(doc, path), message, layer="fhir")
