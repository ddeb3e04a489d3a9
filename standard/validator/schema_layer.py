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
def compiled(event_code: str) -> tuple[Any, dict]:
    """The compiled validator and the raw schema for an event."""
    schema = artefacts.schema(event_code)
    return jsonschema_rs.validator_for(schema), schema


def _node_at(schema: dict, path: list) -> tuple[dict, str]:
    """The schema object holding the failing keyword, and the keyword itself."""
    node: Any = schema
    for step in path[:-1]:
        node = node[step]
    return node, path[-1]


def _message(kind_name: str, kind: Any, node: dict, keyword: str, doc: Any, instance_path: list) -> str:
    hint = node.get("x-hint")
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
    validator, schema = compiled(event_code)
    if validator.is_valid(doc):
        return
    seen = set()
    for error in validator.iter_errors(doc):
        kind_name = type(error.kind).__name__
        schema_path = list(error.schema_path)
        node, keyword = _node_at(schema, schema_path)
        code = node.get("x-finding") or _DEFAULT_BY_KIND.get(kind_name, "profile-cardinality")
        instance_path = list(error.instance_path)
        location = fhirpath(doc, instance_path)
        if kind_name == "Required":
            location = f"{location}.{error.kind.property}"
        key = (code, location)
        if key in seen:
            continue
        seen.add(key)
        yield Finding(code, location, _message(kind_name, error.kind, node, keyword, doc, instance_path),
                      layer="schema")
