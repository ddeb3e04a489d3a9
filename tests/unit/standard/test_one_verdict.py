"""One verdict: the router's validator (the hot path) refuses exactly what full validation refuses, with the same
finding codes, on every case of the suite and on generated mutants of the examples.

Full validation runs the fhir.resources models as a reference on top of the hot path; the hot path's fhir layer
must catch, in every resource, whatever the models catch. A broken twin (the hot path as it was, without the
fhir layer) is run through the same comparison and must disagree, so the comparison can fail.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from standard.validator import FULL, HOT_PATH, Validator, _resource_of, fhir_fast, fhir_layer, structure_layer
from tests.conftest import load_cases
from tests.unit.standard.mutants import MUTATIONS, mutants

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MUTANTS = 1200
ROUTER = Validator(HOT_PATH, now=NOW)
REFERENCE = Validator(FULL, now=NOW)
TWIN = Validator(("parse", "schema", "profile", "business"), now=NOW)  # the hot path before the fhir layer


def _verdict(validator: Validator, message: dict) -> tuple[bool, frozenset[str]]:
    codes = frozenset(f.code for f in validator.iter_findings(message))
    return not codes, codes


def _corpus(examples) -> list[tuple[str, dict]]:
    return [(case_id, test["data"]) for case_id, _, test in load_cases()] + list(mutants(examples, MUTANTS))


@pytest.fixture(scope="module")
def corpus(examples):
    return _corpus(examples)


def test_the_corpus_is_large_and_mixed(corpus):
    invalid = sum(1 for _, message in corpus if not REFERENCE.is_valid(message))
    assert len(corpus) >= MUTANTS + 200
    assert 0.5 * len(corpus) < invalid < len(corpus)  # mostly refused, but valid mutants too (a leap day, ...)


def test_router_and_full_validation_give_the_same_verdict_and_codes(corpus):
    differences = [(name, sorted(_verdict(ROUTER, m)[1] ^ _verdict(REFERENCE, m)[1])) for name, m in corpus
                   if _verdict(ROUTER, m) != _verdict(REFERENCE, m)]
    assert differences == []


def test_every_resource_the_models_refuse_the_fhir_layer_refuses(corpus):
    """Stronger than equal code sets: no resource's problem hides behind another resource's finding."""
    gaps = []
    for name, message in corpus:
        flagged = {_resource_of(f.location) for f in fhir_layer.findings(message)}
        missed = {_resource_of(f.location) for f in structure_layer.findings(message)} - flagged
        if missed:
            gaps.append((name, sorted(missed)))
    assert gaps == []


def test_the_fast_schema_never_accepts_what_the_walk_refuses(corpus):
    """The fhir layer's fast path only saves time: whenever it accepts, the walk finds nothing."""
    unsound = [name for name, message in corpus if fhir_fast.accepts(message) and fhir_layer.problems(message)]
    assert unsound == []


def test_the_fast_schema_accepts_the_examples_and_most_valid_mutants(examples, corpus):
    """Valid traffic must not fall back to the walk, or the router would be slow."""
    assert all(fhir_fast.accepts(m) for m in examples.values())
    clean = [m for _, m in corpus if not fhir_layer.problems(m)]
    assert sum(map(fhir_fast.accepts, clean)) >= 0.95 * len(clean)


def test_a_broken_fast_schema_would_be_caught(corpus, monkeypatch):
    """The twin of the soundness check: a fast path that accepts everything disagrees with the models."""
    monkeypatch.setattr(fhir_fast, "accepts", lambda doc: True)
    router = Validator(HOT_PATH, now=NOW)
    assert any(_verdict(router, m) != _verdict(REFERENCE, m) for _, m in corpus)


def test_the_broken_twin_disagrees_with_full_validation(corpus):
    disagreements = [name for name, m in corpus if _verdict(TWIN, m) != _verdict(REFERENCE, m)]
    # The old hot path let through impossible dates, missing zones, unknown elements, empty arrays...
    assert len(disagreements) > 100
    assert any("impossible_date" in n for n in disagreements)
    assert any("no_zone" in n for n in disagreements)


def test_every_mutation_is_exercised(corpus):
    names = " ".join(name for name, _ in corpus)
    assert all(m.__name__ in names for m in MUTATIONS)


def test_mutants_are_deterministic(examples):
    first = [name for name, _ in mutants(examples, 50, seed=3)]
    assert first == [name for name, _ in mutants(examples, 50, seed=3)]
    assert first != [name for name, _ in mutants(examples, 50, seed=4)]


def _holes(today: str) -> dict[str, dict]:
    """The messages the router used to deliver although `sgx standard validate` refused them."""
    import copy
    import uuid

    from sgx import demo as scenario

    def patient(b):
        return next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")

    base = scenario.placement("la-886", 1, scenario.LODGE, today)
    out = {}
    for name, mutate in {
        "impossible birth date": lambda b: patient(b).__setitem__("birthDate", "2019-02-30"),
        "birth date in the future": lambda b: patient(b).__setitem__("birthDate", "2099-01-01"),
        "timestamp without a zone": lambda b: b.__setitem__("timestamp", b["timestamp"][:19]),
        "header without a source": lambda b: b["entry"][0]["resource"].pop("source"),
        "empty array": lambda b: patient(b).__setitem__("name", []),
        "contained child": lambda b: patient(b).__setitem__("contained", [{"resourceType": "Patient",
                                                                           "birthDate": "2012-01-01"}]),
        "sender-filled destination": lambda b: b["entry"][0]["resource"].__setitem__(
            "destination", [{"endpoint": "urn:x"}]),
    }.items():
        message = copy.deepcopy(base)
        message["identifier"]["value"] = f"urn:uuid:{uuid.uuid4()}"  # each its own message
        mutate(message)
        out[name] = message
    return out


def test_the_router_refuses_with_the_codes_sgx_standard_validate_prints(tmp_path):
    import orjson
    from click.testing import CliRunner

    from broker.transport import INGRESS
    from sgx import demo as scenario
    from standard.cli import standard

    network = scenario.demo_network(tmp_path)
    transport = network.transport()
    router = network.router(transport)
    try:
        for name, message in _holes(datetime.now(UTC).date().isoformat()).items():
            body = orjson.dumps(message)
            (tmp_path / "m.json").write_bytes(body)
            result = CliRunner().invoke(standard, ["validate", "--format", "json", str(tmp_path / "m.json")])
            printed = {f["code"] for f in orjson.loads(result.output)[0]["findings"]}
            transport.publish(INGRESS, scenario.signed_envelope(network, "la-886", message))
            decision = router.handle(transport.get(INGRESS))
            assert decision.decision == "rejected" and decision.reason == "payload-invalid", name
            assert {f.split(" at ")[0] for f in decision.findings} == printed, name
    finally:
        transport.close()


def test_the_router_with_the_old_hot_path_delivers_them(tmp_path):
    """The broken twin: the router validating as it did before one verdict accepts most of those messages."""
    from broker.transport import INGRESS
    from sgx import demo as scenario

    network = scenario.demo_network(tmp_path)
    transport = network.transport()
    router = network.router(transport)
    router.validator = Validator(("parse", "schema", "profile", "business"))
    try:
        accepted = []
        for name, message in _holes(datetime.now(UTC).date().isoformat()).items():
            transport.publish(INGRESS, scenario.signed_envelope(network, "la-886", message))
            decision = router.handle(transport.get(INGRESS))
            if decision.decision == "accepted":
                accepted.append(name)
        # (The contained child is stopped even so, by routing: a person it cannot attribute to the sender.)
        assert {"impossible birth date", "timestamp without a zone", "header without a source",
                "empty array"} <= set(accepted)
    finally:
        transport.close()


def _date_like(rng) -> str:
    parts = [rng.choice(["0000", "0400", "1000", "1900", "2000", "2023", "2024", "2100", "9999", "203", "20245"])]
    if rng.random() < 0.8:
        parts.append(f"-{rng.choice(['00', '01', '02', '04', '09', '11', '12', '13', '2'])}")
        if rng.random() < 0.8:
            parts.append(f"-{rng.choice(['00', '01', '28', '29', '30', '31', '32', '9'])}")
            if rng.random() < 0.6:
                parts.append(f"T{rng.choice(['00', '09', '23', '24'])}:{rng.choice(['00', '59', '60'])}"
                             f":{rng.choice(['00', '59', '60', '5'])}{rng.choice(['', '.1', '.123456789', '.'])}"
                             f"{rng.choice(['Z', '+01:00', '-14:00', '+14:00', '+14:01', '+13:59', '', '+0100'])}")
    return "".join(parts)


def _url_like(rng) -> str:
    alphabet = "abc-.:/?#%@_ ~XZ09[]()+,=;$!*'"
    head = rng.choice(["https://", "http://", "urn:sgx:", "urn:", "ftp://", "", "/"])
    return head + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14)))


def test_the_fast_patterns_accept_no_value_the_walk_refuses():
    """Fuzz the Rust patterns for dates, times and urls against the walk's checks (calendar, zones, urls)."""
    import random

    import jsonschema_rs

    rng = random.Random(5)  # noqa: S311 - reproducible test data
    accepted = {name: 0 for name in fhir_fast.PATTERNS}
    for name, pattern in fhir_fast.PATTERNS.items():
        rust = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
        check = fhir_layer._CHECKS[name]
        values = [_url_like(rng) if name == "url" else _date_like(rng) for _ in range(20_000)]
        for value in values:
            if rust.is_valid(value):
                accepted[name] += 1
                assert check(value) is None, (name, value)
    assert all(n > 200 for n in accepted.values()), accepted  # the fuzz reaches values the patterns accept


def test_the_router_validator_never_raises_on_what_senders_get_wrong(examples):
    """The rules run on messages the other layers refuse too; an exception would stall the router on a message
    it can neither refuse nor deliver. (This seed found three such crashes: unhashable linkIds, references and
    resource types.)"""
    for _name, message in mutants(examples, 5000, seed=77):
        list(ROUTER.iter_findings(message))
