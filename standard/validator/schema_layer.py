"""Layer 2: the generated JSON Schemas, compiled once per event and run in Rust."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema_rs

from standard import artefacts
from standard.validator.findings import Finding
from standard.validator.locations import fhirpath

_DEFAULT_BY_KIND = {
    "Required": "profile-cardinality", "MinItems": "profile-cardinality", "MaxItems": "profile-cardinality",
    "FalseSchema": "profile-cardinality", "Contains": "profile-cardinality",
    "Constant": "profile-fixed-value", "Enum": "profile-binding", "AnyOf": "profile-binding",
    "Pattern": "profile-format", "Type": "profile-type",
}


@cache
def compiled(event_code: str) -> tuple[Any, dict, dict]:
    """The compiled validator, the raw schema and its annotations (finding and hint by node pointer) for an event."""
    schema = artefacts.schema(event_code)
    return jsonschema_rs.validator_for(schema), schema, artefacts.schema_findings(event_code)["nodes"]


def _node_at(schema: dict, path: list) -> tuple[dict, str, str]:
    """The schema object holding the failing keyword, the keyword itself, and the object's JSON pointer."""
    node: Any = schema
    for step in path[:-1]:
        node = node[step]
    pointer = "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path[:-1])
    return node, path[-1], pointer


def _message(kind_name: str, kind: Any, node: dict, keyword: str, doc: Any, instance_path: list,
             hint: str | None) -> str:
    if kind_name == "Required":
        return f"'{kind.property}' is required here; add it" + (f" ({hint})" if hint else "")
    if kind_name == "Constant":
        return f"must be {node[keyword]!r}"
    if kind_name == "Enum":
        allowed = node[keyword]
        shown = ", ".join(map(str, allowed[:12])) + (", ..." if len(allowed) > 12 else "")
        return hint or f"must be one of: {shown}"
    if kind_name == "Pattern":
        return f"does not have the required format: {hint or 'must match ' + node[keyword]}"
    if kind_name == "FalseSchema":
        return "is not allowed here; remove it"
    if kind_name == "Type":
        return f"must be of JSON type {node[keyword]}"
    if kind_name == "MinItems":
        return f"needs at least {node[keyword]} item(s)"
    if kind_name == "MaxItems":
        return f"allows at most {node[keyword]} item(s)"
    if hint:
        return hint[:1].upper() + hint[1:] if kind_name != "Contains" else f"missing or wrong: {hint}"
    return f"breaks the '{keyword}' rule of the message schema"


def findings(event_code: str, doc: dict) -> Iterator[Finding]:
    """Schema findings for a parsed message whose event is known."""
    validator, schema, annotations = compiled(event_code)
    if validator.is_valid(doc):
        return
    seen = set()
    for error in validator.iter_errors(doc):
        kind_name = type(error.kind).__name__
        schema_path = list(error.schema_path)
        node, keyword, pointer = _node_at(schema, schema_path)
        marks = annotations.get(pointer, {})
        code = marks.get("finding") or _DEFAULT_BY_KIND.get(kind_name, "profile-cardinality")
        instance_path = list(error.instance_path)
        location = fhirpath(doc, instance_path)
        if kind_name == "Required":
            location = f"{location}.{error.kind.property}"
        key = (code, location)
        if key in seen:
            continue
        seen.add(key)
        yield Finding(code, location,
                      _message(kind_name, error.kind, node, keyword, doc, instance_path, marks.get("hint")),
                      layer="schema")
