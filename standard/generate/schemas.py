"""JSON Schemas (draft 2020-12) for every message, generated from the profile definitions.

The published schemas use only standard keywords and declare the `type` of every node that
has type-specific keywords, so they compile in any draft 2020-12 validator, strict ones
included (ajv 8 in its default strict mode). The finding code a breach of a node produces,
and what to do about it, are published beside each schema in ``<event>.findings.json``,
keyed by the JSON pointer of the schema node: a validator that reports the failing schema
location (ajv's ``schemaPath``, jsonschema-rs's ``schema_path``) can report our codes from it.
"""

from __future__ import annotations

from typing import Any

from standard import catalogue as cat
from standard import fhirmodel
from standard import terminology as term
from standard.profiles import PROFILES, El, effective_elements

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Marks the generator puts on schema nodes while building; `split_annotations` moves them into
# the side file, so no published schema carries a keyword a strict validator does not know.
FINDING = "x-finding"
HINT = "x-hint"

# The code a failing keyword reports when its node has no entry in the side file (and, for a
# keyword not listed, DEFAULT_FINDING); the schema layer's own table must say the same.
DEFAULT_FINDING = "profile-cardinality"
DEFAULT_FINDING_BY_KEYWORD = {
    "required": "profile-cardinality", "minItems": "profile-cardinality", "maxItems": "profile-cardinality",
    "false": "profile-cardinality",  # a `false` schema (ajv's keyword "false schema")
    "contains": "profile-cardinality", "minContains": "profile-cardinality",
    "maxContains": "profile-cardinality", "const": "profile-fixed-value", "enum": "profile-binding",
    "anyOf": "profile-binding", "pattern": "profile-format", "type": "profile-type",
}


def _pattern_schema(value: Any) -> dict:
    """A schema that holds when the instance contains `value` (FHIR pattern semantics)."""
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {k: _pattern_schema(v) for k, v in value.items()},
            "required": sorted(value),
            FINDING: "profile-fixed-value",
        }
    if isinstance(value, list):
        return {"type": "array", "allOf": [{"contains": _pattern_schema(v), FINDING: "profile-fixed-value",
                                            HINT: f"must contain {_describe(v)}"} for v in value]}
    return {"const": value}


def _describe(value: Any) -> str:
    if isinstance(value, dict) and "coding" in value:
        return " or ".join(f"{c['system']}|{c['code']}" for c in value["coding"])
    if isinstance(value, dict) and "system" in value and "code" in value:
        return f"{value['system']}|{value['code']}"
    return repr(value)


def _coding_schema(value_set_id: str) -> dict:
    options = [
        {"type": "object", "properties": {"system": {"const": system}, "code": {"enum": sorted(codes)}},
         "required": ["system", "code"]}
        for system, codes in sorted(term.expand(value_set_id).items())
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _binding_schema(type_name: str, value_set_id: str) -> dict:
    vs = term.value_sets()[value_set_id]
    hint = f"use a code from ValueSet {vs.canonical} ({vs.title})"
    if type_name == "code":
        (codes,) = term.expand(value_set_id).values()
        return {"enum": sorted(codes), FINDING: "profile-binding", HINT: hint}
    if type_name == "Coding":
        return {**_coding_schema(value_set_id), FINDING: "profile-binding", HINT: hint}
    if type_name == "CodeableConcept":
        return {
            "type": "object",
            "required": ["coding"],
            "properties": {"coding": {"type": "array", "contains": _coding_schema(value_set_id),
                                      FINDING: "profile-binding", HINT: hint}},
            FINDING: "profile-binding", HINT: hint,
        }
    raise ValueError(f"cannot bind a {type_name} element to a value set")


def _own_constraints(el: El, info: fhirmodel.ElementInfo) -> list[dict]:
    """Schemas that one element value (one item, for lists) must satisfy."""
    parts: list[dict] = []
    if el.fixed is not None and ":" not in el.path.split(".")[-1]:
        parts.append(_pattern_schema(el.fixed))
    if el.binding and el.strength == "required":
        parts.append(_binding_schema(info.type_name, el.binding))
    if el.regex:
        parts.append({"type": "string", "pattern": el.regex, FINDING: el.finding or "profile-format",
                      HINT: f"must match {el.regex}"})
    if el.targets:
        parts.append({"type": "object", "required": ["reference"], "properties": {"reference": {"type": "string"}},
                      FINDING: "profile-cardinality",
                      HINT: "reference the fullUrl of an entry in this Bundle"})
    if el.logical:
        parts.append({"type": "object", "required": ["identifier"], "properties": {"identifier": True},
                      FINDING: "profile-cardinality",
                      HINT: "identify the participant by its directory identifier"})
    return parts


def _node(type_name: str, elements: list[tuple[str, El]]) -> dict:
    """Schema of a value of FHIR type `type_name` under the given (relative path, element) constraints."""
    by_name: dict[str, dict[str, Any]] = {}
    for rel, el in elements:
        head, _, rest = rel.partition(".")
        name, _, slice_name = head.partition(":")
        entry = by_name.setdefault(name, {"own": None, "children": [], "slices": {}})
        if slice_name:
            sl = entry["slices"].setdefault(slice_name, {"own": None, "children": []})
            if rest:
                sl["children"].append((rest, el))
            else:
                sl["own"] = el
        elif rest:
            entry["children"].append((rest, el))
        else:
            entry["own"] = el

    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, entry in by_name.items():
        info = fhirmodel.element(type_name, name)
        own: El | None = entry["own"]
        if own is not None and own.max == "0":
            properties[name] = False
            continue
        item_parts = _own_constraints(own, info) if own else []
        if entry["children"]:
            item_parts.append(_node(info.type_name, entry["children"]))
        item = _merge(item_parts)
        if info.is_list:
            prop: dict[str, Any] = {"type": "array", "items": item} if item else {"type": "array"}
            if own and own.min:
                prop["minItems"] = own.min
            if own and own.max == "1":
                prop["maxItems"] = 1
            slice_rules = [_slice(info.type_name, s_name, s) for s_name, s in entry["slices"].items()]
            if slice_rules:
                prop["allOf"] = [r for rules in slice_rules for r in rules]
            properties[name] = prop
        else:
            properties[name] = item
        if own and own.min:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _slice(type_name: str, slice_name: str, sl: dict) -> list[dict]:
    own: El = sl["own"]
    discriminator = _pattern_schema(own.fixed)
    rules: list[dict] = []
    count: dict[str, Any] = {"contains": discriminator, "minContains": own.min or 0,
                             FINDING: "profile-cardinality",
                             HINT: f"slice '{slice_name}' ({_describe(own.fixed)})"}
    if own.max not in (None, "*"):
        count["maxContains"] = int(own.max)
    if own.min or "maxContains" in count:  # "minContains": 0 alone always holds, and strict validators refuse it
        rules.append(count)
    if sl["children"]:
        rules.append({"items": {"if": discriminator, "then": _node(type_name, sl["children"])}})
    return rules


def _merge(parts: list[dict]) -> dict:
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    return {"allOf": parts}


def profile_schema(profile_id: str) -> dict:
    """The schema of one profiled resource."""
    profile = PROFILES[profile_id]
    elements = [(el.path, el) for el in effective_elements(profile_id)]
    schema = _node(profile.type, elements)
    schema["properties"]["resourceType"] = {"const": profile.type}
    schema["required"] = ["resourceType", *schema.get("required", [])]
    return {"title": profile.title, "description": profile.description, "$comment": f"profile {profile.url}",
            **schema}


def _is_type(resource_type: str) -> dict:
    return {"type": "object", "properties": {"resourceType": {"const": resource_type}}, "required": ["resourceType"]}


def event_schema(event: cat.Event) -> dict:
    """The schema of one message type: the Bundle, its header and every profiled entry."""
    profiles = [event.header_profile, event.focus_profile, *event.required_profiles, *event.optional_profiles]
    by_type: dict[str, str] = {}
    for pid in profiles[1:]:
        rtype = PROFILES[pid].type
        if rtype in by_type and by_type[rtype] != pid:
            raise ValueError(f"event {event.code}: {pid} and {by_type[rtype]} both profile {rtype}")
        by_type[rtype] = pid
    defs = {pid: profile_schema(pid) for pid in ["SGX-MessageBundle", *dict.fromkeys(profiles)]}
    if PROFILES[event.header_profile].base:
        base = PROFILES[event.header_profile].base
        defs[base] = profile_schema(base)
    defs["header"] = {
        "type": "object",
        "allOf": [{"$ref": f"#/$defs/{event.header_profile}"}],
        "properties": {
            "eventCoding": {"type": "object", "properties": {"code": {"const": event.code}}},
            "definition": {"const": event.definition_url},
        },
    }
    dispatch = [{"if": _is_type("MessageHeader"), "then": {"$ref": "#/$defs/header"}}]
    dispatch += [{"if": _is_type(rtype), "then": {"$ref": f"#/$defs/{pid}"}} for rtype, pid in by_type.items()]
    allowed = sorted({"MessageHeader", *by_type})
    required_entries = [
        {"contains": {"type": "object", "properties": {"resource": _is_type(PROFILES[pid].type)},
                      "required": ["resource"]},
         FINDING: "profile-cardinality",
         HINT: f"the {event.code} message needs a {PROFILES[pid].type} entry ({PROFILES[pid].title})"}
        for pid in dict.fromkeys([event.focus_profile, *event.required_profiles])
    ]
    return {
        "$schema": DIALECT,
        "$id": event.schema_id,
        "title": f"{event.display} message",
        "description": event.purpose,
        "$comment": f"message definition {event.definition_url}; finding codes of the nodes: "
                    f"{findings_file_name(event)}",
        "type": "object",
        "allOf": [{"$ref": "#/$defs/SGX-MessageBundle"}],
        "properties": {
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "resource": {
                            "type": "object",
                            "properties": {"resourceType": {
                                "enum": allowed, FINDING: "profile-unexpected-resource",
                                HINT: f"a {event.code} message may only carry {', '.join(allowed)}"}},
                            "allOf": dispatch,
                        }
                    }
                },
                "allOf": required_entries,
            }
        },
        "$defs": defs,
    }


def _pointer(path: list[str]) -> str:
    """The RFC 6901 JSON pointer of a path of keys and indexes."""
    return "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path)


def split_annotations(schema: Any) -> tuple[Any, dict[str, dict[str, str]]]:
    """The schema without the generator's marks, and the marks by JSON pointer of their node.

    Builds a copy rather than editing in place: the generator shares some sub-schemas
    (a slice discriminator is both a `contains` and an `if`), and each place needs its entry.
    """
    found: dict[str, dict[str, str]] = {}

    def walk(node: Any, path: list[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, [*path, str(i)]) for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        marks = {name: node[key] for name, key in (("finding", FINDING), ("hint", HINT)) if key in node}
        if marks:
            found[_pointer(path)] = marks
        return {key: walk(value, [*path, key]) for key, value in node.items() if key not in (FINDING, HINT)}

    return walk(schema, []), found


def schema_file_name(event: cat.Event) -> str:
    return f"{event.code}.schema.json"


def findings_file_name(event: cat.Event) -> str:
    return f"{event.code}.findings.json"


def findings_document(event: cat.Event, annotations: dict[str, dict[str, str]]) -> dict:
    """The side file of one schema: what a breach of each node means, keyed by the node's JSON pointer."""
    return {
        "$comment": "Finding codes of the Safeguarding Exchange for the nodes of the schema named by 'schema'. "
                    "Each key of 'nodes' is the JSON pointer, from the schema's root, of the schema object whose "
                    "keyword failed (for ajv: errors[i].schemaPath without the leading '#' and the last segment); "
                    "'finding' is the code to report and 'hint' says what to do. A failing node not listed "
                    "reports the code of its keyword in 'defaults' ('false' for a false schema), and a keyword "
                    "not there reports 'otherwise'.",
        "schema": event.schema_id,
        "event": event.code,
        "messageDefinition": event.definition_url,
        "defaults": DEFAULT_FINDING_BY_KEYWORD,
        "otherwise": DEFAULT_FINDING,
        "nodes": annotations,
    }



def all_schemas() -> dict[str, dict]:
    """Every published file of the schemas folder by name: each message schema and its findings side file."""
    files: dict[str, dict] = {}
    for event in cat.EVENTS:
        schema, annotations = split_annotations(event_schema(event))
        files[schema_file_name(event)] = schema
        files[findings_file_name(event)] = findings_document(event, annotations)
    return files
