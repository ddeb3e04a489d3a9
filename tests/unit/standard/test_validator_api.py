"""The validator's public API: is_valid, iter_findings, validate, and what findings may say."""

from __future__ import annotations

import copy

import orjson
import pytest

import standard.validator as v
from standard.errors import MessageInvalid, SafeguardingExchangeError
from standard.validator.outcome import operation_outcome


def test_valid_example_passes_all_three_entry_points(examples):
    message = examples["placement-started-childrens-home"]
    assert v.is_valid(message)
    assert list(v.iter_findings(orjson.dumps(message))) == []
    assert v.validate(orjson.dumps(message).decode())["identifier"] == message["identifier"]


def test_validate_raises_with_every_error_finding(examples):
    message = copy.deepcopy(examples["placement-started-childrens-home"])
    del message["timestamp"]
    message["type"] = "batch"
    with pytest.raises(MessageInvalid) as caught:
        v.validate(message)
    assert isinstance(caught.value, SafeguardingExchangeError)
    assert {f.code for f in caught.value.findings} == {"profile-cardinality", "profile-fixed-value"}
    assert "and 1 more finding" in str(caught.value)


def test_findings_never_repeat_personal_data(examples):
    message = copy.deepcopy(examples["placement-started-childrens-home"])
    patient = next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["identifier"][1]["value"] = "9990000019"  # bad check digit
    patient["birthDate"] = "14/05/2012"  # not FHIR
    patient["identifier"][0]["value"] = 12345  # wrong JSON type
    findings = list(v.iter_findings(message))
    assert {"nhs-number-invalid", "fhir-structure"} <= {f.code for f in findings}
    for f in findings:
        for secret in ("9990000019", "14/05/2012", "12345", "2012"):
            assert secret not in f.message and secret not in f.location


def test_not_json_and_not_an_object_are_findings_not_exceptions():
    assert [f.code for f in v.iter_findings(b"{not json")] == ["json-invalid"]
    assert [f.code for f in v.iter_findings(b"[1, 2]")] == ["json-invalid"]
    assert [f.code for f in v.iter_findings(b'{"resourceType": "Bundle"}')] == ["event-unknown"]


def test_oversized_message_is_refused_before_parsing():
    validator = v.Validator(max_bytes=100)
    findings = list(validator.iter_findings(b"{" + b" " * 200 + b"}"))
    assert [f.code for f in findings] == ["message-too-large"]


def test_wrong_json_type_is_reported_as_profile_type(examples):
    message = copy.deepcopy(examples["placement-started-childrens-home"])
    patient = next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["identifier"] = patient["identifier"][0]  # an object where FHIR has a list
    assert "profile-type" in {f.code for f in v.iter_findings(message)}


def test_locations_are_fhirpath_style(examples):
    message = copy.deepcopy(examples["placement-started-childrens-home"])
    encounter = next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == "Encounter")
    encounter["period"]["end"] = "2000-01-01"
    (finding,) = v.iter_findings(message)
    assert finding.location == "Bundle.entry[5].resource.ofType(Encounter).period.end"
    assert finding.requirements == ("PLC-005",)


def test_unknown_layer_is_refused():
    with pytest.raises(ValueError, match="unknown validation layers"):
        v.Validator(["schema", "vibes"])


def test_operation_outcome_carries_codes_and_expressions(examples):
    message = copy.deepcopy(examples["concern-notification-whistleblowing"])
    message["type"] = "document"
    outcome = operation_outcome(v.iter_findings(message))
    (issue,) = outcome["issue"]
    assert issue["details"]["coding"][0]["code"] == "profile-fixed-value"
    assert issue["expression"] == ["Bundle.type"]
    assert operation_outcome([])["issue"][0]["severity"] == "information"


def test_nhs_number_check_digit():
    from standard.validator.business_rules import nhs_number_is_valid

    assert nhs_number_is_valid("9434765919")  # NHS Digital's published test number
    assert not nhs_number_is_valid("9434765918")
    assert not nhs_number_is_valid("943476591")
    assert not nhs_number_is_valid("94347659AB")


def test_a_key_given_twice_is_refused_however_it_is_written(examples):
    body = orjson.dumps(next(m for name, m in examples.items() if name.startswith("placement-started")))
    hot = v.Validator(v.HOT_PATH)
    assert hot.is_valid(body)
    twice = body.replace(b'"resourceType":"Bundle"', b'"resourceType":"Bundle","resourceType" :"Bundle"', 1)
    assert [f.code for f in hot.iter_findings(twice)] == ["json-duplicate-key"]
    # Colons written as \u003a inside strings must not hide a repeated key, nor make a good message fail.
    hidden = twice.replace(b'"Example', b'"\\u003a: Example', 1)
    assert hidden != twice and "json-duplicate-key" in [f.code for f in hot.iter_findings(hidden)]
    escaped_only = body.replace(b'"Example', b'"\\u003A Example', 1)
    assert escaped_only != body and "json-duplicate-key" not in [f.code for f in hot.iter_findings(escaped_only)]
    pretty = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    assert hot.is_valid(pretty)
    pretty_twice = pretty.replace(b'"type": "message"', b'"type" :\n "message",\n  "type": "message"', 1)
    assert pretty_twice != pretty and [f.code for f in hot.iter_findings(pretty_twice)] == ["json-duplicate-key"]


def _placement(examples):
    return copy.deepcopy(examples["placement-started-childrens-home"])


def _of_type(message, rtype):
    return next(e["resource"] for e in message["entry"] if e["resource"]["resourceType"] == rtype)


def test_future_dates_are_judged_against_the_injected_clock_with_five_minutes_of_skew(examples):
    from datetime import UTC, datetime, timedelta

    message = _placement(examples)
    stamp = datetime.fromisoformat(message["timestamp"])
    assert v.Validator(now=stamp).is_valid(message)
    assert v.Validator(now=stamp - timedelta(minutes=4)).is_valid(message)  # a sender's clock a little fast
    early = v.Validator(now=lambda: stamp - timedelta(minutes=6))
    assert {f.code for f in early.iter_findings(message)} == {"timestamp-out-of-window"}
    _of_type(message, "Patient")["birthDate"] = stamp.date().isoformat()
    assert v.Validator(now=stamp).is_valid(message)  # born today
    _of_type(message, "Patient")["birthDate"] = (stamp + timedelta(days=2)).date().isoformat()
    assert "date-in-future" in {f.code for f in v.Validator(now=stamp).iter_findings(message)}
    later = v.Validator(now=datetime(2099, 1, 1, tzinfo=UTC))
    assert later.is_valid(message)  # an old timestamp is fine (the router's signature window judges freshness)
    message["timestamp"] = "2023-12-31T23:59:59Z"
    assert {f.code for f in later.iter_findings(message)} == {"timestamp-out-of-window"}  # before the floor


def test_periods_with_times_are_compared_as_instants(examples):
    from standard.validator.business_rules import period_reversed

    assert period_reversed("2026-03-02T10:00:00Z", "2026-03-02T09:00:00Z")
    assert period_reversed("2026-03-02T10:00:00+00:00", "2026-03-02T10:30:00+01:00")  # 09:30Z
    assert not period_reversed("2026-03-02T10:00:00+01:00", "2026-03-02T09:30:00Z")  # 09:00Z to 09:30Z
    assert not period_reversed("2026-03-02", "2026-03-02T00:30:00Z")
    assert period_reversed("2026-03-02", "2026-03-01")
    message = _placement(examples)
    _of_type(message, "Encounter")["period"] = {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:59:59Z"}
    assert [f.code for f in v.iter_findings(message)] == ["period-order"]


def test_primitives_the_models_let_through_are_refused_on_both_paths(examples):
    for mutate in (lambda p: p.__setitem__("gender", "female "), lambda p: p.__setitem__("name", []),
                   lambda p: p.__setitem__("birthDate", "2012-02-30"), lambda p: p.__setitem__("active", "true"),
                   lambda p: p.__setitem__("language", "en  GB")):
        message = _placement(examples)
        mutate(_of_type(message, "Patient"))
        for validator in (v.Validator(v.HOT_PATH), v.Validator(v.FULL)):
            assert "fhir-structure" in {f.code for f in validator.iter_findings(message)}
