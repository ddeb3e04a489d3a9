"""The published schemas carry only standard keywords; the finding codes live in their side files."""

from __future__ import annotations

import orjson
import pytest

from standard import artefacts
from standard import catalogue as cat
from standard.generate import schemas
from standard.validator import FINDING_CODES, schema_layer

EVENTS = [e.code for e in cat.EVENTS]


def _resolve(schema, pointer: str):
    node = schema
    for step in pointer.split("/")[1:]:
        step = step.replace("~1", "/").replace("~0", "~")
        node = node[int(step)] if isinstance(node, list) else node[step]
    return node


def _keys(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys(value)


@pytest.mark.parametrize("event", EVENTS)
def test_no_published_schema_carries_an_extension_keyword(event):
    assert [k for k in _keys(artefacts.schema(event)) if k.startswith("x-")] == []


@pytest.mark.parametrize("event", EVENTS)
def test_every_side_file_entry_names_a_schema_object_and_a_known_code(event):
    side, schema = artefacts.schema_findings(event), artefacts.schema(event)
    assert side["schema"] == schema["$id"] and side["event"] == event
    assert len(side["nodes"]) > 10
    for pointer, marks in side["nodes"].items():
        assert isinstance(_resolve(schema, pointer), dict), pointer
        assert marks["finding"] in FINDING_CODES, pointer
        assert set(marks) <= {"finding", "hint"}


@pytest.mark.parametrize("event", [e for e in cat.EVENTS if e.code in ("placement-started", "allegation-referral")],
                         ids=lambda e: e.code)
def test_putting_the_side_file_back_gives_the_generators_annotated_schema(event):
    schema = orjson.loads((artefacts.SCHEMAS / f"{event.code}.schema.json").read_bytes())  # a copy we may edit
    side = artefacts.schema_findings(event.code)
    for pointer, marks in side["nodes"].items():
        node = _resolve(schema, pointer)
        node[schemas.FINDING] = marks["finding"]
        if "hint" in marks:
            node[schemas.HINT] = marks["hint"]
    assert schema == schemas.event_schema(event)


def test_split_keeps_a_shared_sub_schema_annotated_in_every_place():
    shared = {"type": "object", "required": ["a"], "properties": {"a": True}, schemas.FINDING: "profile-fixed-value"}
    clean, found = schemas.split_annotations({"type": "array", "contains": shared, "items": {"if": shared}})
    assert set(found) == {"/contains", "/items/if"}
    assert schemas.FINDING not in clean["contains"] and schemas.FINDING in shared


def test_the_schema_layer_and_the_side_files_give_the_same_default_codes():
    keyword_of_kind = {"Required": "required", "MinItems": "minItems", "MaxItems": "maxItems",
                       "FalseSchema": "false", "Contains": "contains", "Constant": "const", "Enum": "enum",
                       "AnyOf": "anyOf", "Pattern": "pattern", "Type": "type"}
    assert set(keyword_of_kind) == set(schema_layer._DEFAULT_BY_KIND)
    published = artefacts.schema_findings("placement-started")
    for kind, code in schema_layer._DEFAULT_BY_KIND.items():
        assert published["defaults"][keyword_of_kind[kind]] == code, kind
    assert published["otherwise"] == "profile-cardinality"
