"""The published oversight rules: valid against their schema, consistent, and refused when broken."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from broker.oversight import rules
from standard.errors import OversightError


def _document() -> dict:
    return json.loads(rules.RULES_FILE.read_text(encoding="utf-8"))


def test_the_published_rules_are_valid_against_their_schema():
    schema = json.loads(rules.SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(_document())) == []


def test_a_validator_we_did_not_write_agrees_and_refuses_a_broken_rule():
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(json.loads(rules.SCHEMA_FILE.read_text(encoding="utf-8")))
    document = _document()
    assert validator.is_valid(document)
    document["rules"][0]["window_days"] = 0
    assert not validator.is_valid(document)


def test_every_rule_names_its_window_threshold_and_reason_and_every_clock_its_source():
    published = rules.published()
    assert published.version.count(".") == 2
    for rule in published.rules:
        assert rule.window_days > 0 and rule.min_weight > 0 and rule.why
        assert rule.kinds <= set(published.signals)
    for clock in published.clocks:
        assert "Regulations" in clock.source or "Working Together" in clock.source
    kinds_in_rules = set().union(*(r.kinds for r in published.rules))
    concerns = {k for k, s in published.signals.items() if s.concern}
    assert concerns <= kinds_in_rules  # every sign of concern is counted by some rule


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["rules"][0].update(kinds=["allegation", "alegation"]), "unknown signal kinds ['alegation']"),
    (lambda d: d["rules"][0].update(window_days=0), "at rules/0/window_days"),
    (lambda d: d["rules"][0].pop("min_weight"), "'min_weight' is a required property"),
    (lambda d: d["rules"][2].pop("min_sources"), "'min_sources' is a required property"),
    (lambda d: d["signals"][0].update(source="nobody"), "names source 'nobody'"),
    (lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])), "two rules share an id"),
])
def test_a_broken_rules_document_is_refused_naming_where(change, expected):
    document = _document()
    change(document)
    with pytest.raises(OversightError) as caught:
        rules.parse(document, "my-rules.json")
    assert expected in str(caught.value) and "my-rules.json" in str(caught.value)


def test_a_missing_or_unreadable_rules_file_is_an_oversight_error(tmp_path):
    with pytest.raises(OversightError, match="no such rules file"):
        rules.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(OversightError, match="not JSON"):
        rules.load(bad)


def test_a_threshold_scales_with_the_children_placed_but_never_falls_below_its_minimum():
    rule = next(r for r in rules.published().rules if r.id == "OVR-ALLEGATIONS")
    assert rule.threshold(1) == rule.min_weight
    assert rule.threshold(100) == pytest.approx(rule.per_child_year * 100 * rule.window_days / 365)


def test_the_docs_page_names_every_rule_and_clock_of_the_published_version():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[3] / "docs" / "oversight.md").read_text(encoding="utf-8")
    published = rules.published()
    assert f"version {published.version}" in page
    for item in (*published.rules, *published.clocks):
        assert f"`{item.id}`" in page, f"docs/oversight.md does not describe {item.id}"
