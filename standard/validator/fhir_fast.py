"""The fhir layer's fast accept path: the same FHIR R4 base rules as a JSON Schema, run in Rust (jsonschema-rs).

Most messages are fine, and walking them in Python costs more than every other layer together. This schema is
built from the same element definitions as the walk (fhir_layer._type) and is conservative: when it accepts a
message the walk would find nothing (tests/unit/standard/test_one_verdict.py checks exactly that on the case suite
and the mutants), and when it does not, the walk runs and gives the findings. So the verdict is always the walk's;
the schema only saves time. Where the schema cannot be exact it refuses and leaves the case to the walk:
resource types the catalogue does not use, nulls in primitive arrays, required primitives given only as an
extension, leap seconds and the like. Formats JSON Schema cannot express (calendar dates, urls, version 4 UUIDs,
base64) call the walk's own checks; a whole number given as 1.0 is caught by a keyword of our own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from standard import catalogue as cat
from standard.profiles import PROFILES
from standard.validator import fhir_layer as fl

# Rust's \s is Unicode White_Space; Python's str.isspace() also counts \x1c-\x1f: treat those as whitespace too,
# so that the schema never accepts a string the walk refuses.
_NOT_SPACE = r"[^\s\x1c-\x1f]"
_FORMATTED = ("uuid", "oid", "base64Binary", "time")  # rare: the walk's own checks, called from Rust

# Common formats as patterns, which run in Rust without calling back (a callback costs about 3 us). Each accepts
# a subset of what the walk accepts (tests/unit/standard/test_one_verdict.py fuzzes them against it): calendar
# days exactly (leap years too), years from 1000, fractions of up to 9 digits, no leap seconds.
_YEAR = "[1-9][0-9]{3}"
_DAY = ("(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])")
_LEAP_DAY = "([1-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[13579][26])00)-02-29"
_FULL_DATE = f"({_YEAR}-({_DAY})|{_LEAP_DAY})"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_PARTIAL = f"{_YEAR}(-(0[1-9]|1[0-2]))?"
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"  # the last label of a host starts with a letter (not IPv4)
PATTERNS = {
    "date": f"^({_PARTIAL}|{_FULL_DATE})$",
    "dateTime": f"^({_PARTIAL}|{_FULL_DATE}({_TIME})?)$",
    "instant": f"^{_FULL_DATE}{_TIME}$",
    "url": (f"^(urn:[A-Za-z0-9()+,.:=@;$_!*'%/-]+"
            f"|https?://({_LABEL}\\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?(:[0-9]{{1,4}})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?)$"),
}
_INT_LOW = {"integer": -2_147_483_648, "unsignedInt": 0, "positiveInt": 1}


def _primitive(name: str) -> dict:
    if name in ("string", "markdown"):
        return {"type": "string", "minLength": 1, "maxLength": fl.MAX_STRING, "pattern": _NOT_SPACE}
    if name == "xhtml":
        return {"type": "string", "maxLength": fl.MAX_STRING, "pattern": r"^[ \t\r\n]*<div"}
    if name == "code":
        return {"type": "string", "maxLength": fl.MAX_STRING, "pattern": f"^{_NOT_SPACE}+( {_NOT_SPACE}+)*$"}
    if name == "id":
        return {"type": "string", "pattern": r"^[A-Za-z0-9.\-]{1,64}$"}
    if name in ("uri", "canonical"):
        return {"type": "string", "maxLength": fl.MAX_STRING, "pattern": f"^{_NOT_SPACE}+$"}
    if name in PATTERNS:
        return {"type": "string", "pattern": PATTERNS[name]}
    if name in _FORMATTED:
        return {"type": "string", "format": f"fhir-{name}"}
    if name == "boolean":
        return {"type": "boolean"}
    if name in _INT_LOW:
        return {"type": "integer", "minimum": _INT_LOW[name], "maximum": 2_147_483_647, "fhirWholeNumber": True}
    if name == "decimal":
        return {"type": "number"}
    raise ValueError(f"no fast schema for FHIR primitive {name}")


_PRIMITIVE_NAMES = {check: name for name, check in fl._CHECKS.items()}


def _fast_resource_types() -> list[str]:
    """The resource types the catalogue's messages carry; others are left to the walk."""
    return sorted({"Bundle", *(p.type for p in PROFILES.values())})


@cache
def schema() -> dict:
    """The fast schema of a message (a Bundle)."""
    defs: dict[str, Any] = {}
    pending = ["Bundle", *_fast_resource_types(), "FHIRPrimitiveExtension"]

    def ref(type_name: str) -> dict:
        if type_name not in defs and type_name not in pending:
            pending.append(type_name)
        return {"$ref": f"#/$defs/{type_name}"}

    def value_schema(kind: int, sub: Any) -> dict:
        if kind in (fl._STRING, fl._PRIMITIVE):
            return _primitive(_PRIMITIVE_NAMES[sub])
        if kind == fl._RESOURCE:
            return {"$ref": "#/$defs/_resource"}
        return ref(sub)

    while pending:
        type_name = pending.pop()
        if type_name in defs:
            continue
        spec = fl._type(type_name)
        properties: dict[str, Any] = {}
        for key, (kind, sub, is_list) in spec.fields.items():
            if key == "contained" and spec.is_resource:
                properties[key] = False  # refused by the standard: the walk reports it
                continue
            item = value_schema(kind, sub)
            if kind == fl._EXTENSION and is_list:
                item = {"anyOf": [{"type": "null"}, item]}
            properties[key] = {"type": "array", "minItems": 1, "items": item} if is_list else item
        node: dict[str, Any] = {"type": "object", "minProperties": 1, "additionalProperties": False,
                                "properties": properties}
        if spec.is_resource:
            properties["resourceType"] = {"const": type_name}
        if spec.required:
            node["required"] = list(spec.required)
        exclusive = {name: {"properties": {other: False for other in names if other != name}}
                     for names in spec.choices for name in names}
        if exclusive:
            node["dependentSchemas"] = exclusive
        if spec.required_choices:
            node["allOf"] = [{"anyOf": [{"required": [n]} for n in names]} for names in spec.required_choices]
        defs[type_name] = node
    fast_types = _fast_resource_types()
    defs["_resource"] = {
        "type": "object", "required": ["resourceType"],
        "properties": {"resourceType": {"enum": fast_types}},
        "allOf": [{"if": {"properties": {"resourceType": {"const": t}}}, "then": {"$ref": f"#/$defs/{t}"}}
                  for t in fast_types],
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{cat.CANONICAL}/fast-fhir-r4",
            "$ref": "#/$defs/Bundle", "$defs": defs}


class _WholeNumber:
    """`fhirWholeNumber`: a JSON whole number (JSON Schema's "integer" also takes 1.0)."""

    def __init__(self, parent_schema: dict, value: Any, schema_path: list) -> None:
        pass

    def validate(self, instance: Any) -> None:
        if instance.__class__ is not int:
            raise ValueError("must be a JSON whole number")


def _format_check(name: str):
    check = fl._CHECKS[name]
    return lambda value: check(value) is None


@cache
def validator() -> Any:
    return jsonschema_rs.validator_for(
        schema(), formats={f"fhir-{n}": _format_check(n) for n in _FORMATTED}, validate_formats=True,
        keywords={"fhirWholeNumber": _WholeNumber})


def accepts(doc: dict) -> bool:
    """True when the message certainly meets the FHIR R4 base rules (False: ask the walk)."""
    return validator().is_valid(doc)
