"""Data minimisation wherever a child hides: a placing authority (or its LADO) never receives a message that
names another authority's child, whether that child is a top-level entry, a contained resource, a resource in a
nested Bundle, a logical reference in a Provenance, a Task input or an extension, or a bare NHS number.

Routing is checked directly (defence in depth: it must hold for what validation lets through as well as for
what it refuses); the standard's own refusal of contained resources is checked beside it. A broken twin, routing
that reads children only from the top-level entries, is run on the same corpus and must leak.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import orjson
import pytest

from broker import routing
from broker.transport import INGRESS, delivery_queue
from sgx import demo as scenario
from sgx.demo import PROVIDER, demo_network
from standard import catalogue as cat
from standard.generate.examples import synthetic_nhs_number
from standard.validator import HOT_PATH, Validator

KENT, LEEDS = "la-886", "la-383"
LEEDS_CHILD = "383-0003"
LEEDS_NHS = synthetic_nhs_number(3)
OTHER_NAME = "Invented-Other"  # the family name of every person hidden in the corpus


def _leeds_patient() -> dict:
    return {"resourceType": "Patient", "id": "hidden", "birthDate": "2011-04-04", "gender": "female",
            "name": [{"family": OTHER_NAME}],
            "identifier": [{"system": cat.LOCAL_CHILD_ID, "value": LEEDS_CHILD,
                            "assigner": {"identifier": {"system": cat.DFE_LA_CODE, "value": "383"}}},
                           {"system": cat.NHS_NUMBER, "value": LEEDS_NHS}]}


def _leeds_identifier() -> dict:
    return {"system": cat.LOCAL_CHILD_ID, "value": LEEDS_CHILD,
            "assigner": {"identifier": {"system": cat.DFE_LA_CODE, "value": "383"}}}


def _resource(bundle: dict, rtype: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def _add_entry(bundle: dict, resource: dict) -> None:
    bundle["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000c0de", "resource": resource})


def _provenance(bundle: dict, what: dict) -> dict:
    focus = bundle["entry"][0]["resource"]["focus"][0]["reference"]
    return {"resourceType": "Provenance", "target": [{"reference": focus}], "recorded": "2026-03-02T09:30:00Z",
            "agent": [{"who": {"identifier": {"system": cat.PARTICIPANT_ID, "value": PROVIDER}}}],
            "entity": [{"role": "source", "what": what}]}


# Where another authority's child can hide in a serious incident about a Kent child.
HIDING_PLACES: dict[str, Callable[[dict], None]] = {
    "a second top-level Patient": lambda b: _add_entry(b, _leeds_patient()),
    "contained in the notification": lambda b: _resource(b, "Communication").__setitem__(
        "contained", [_leeds_patient()]),
    "contained in the incident": lambda b: _resource(b, "AdverseEvent").__setitem__("contained", [_leeds_patient()]),
    "contained in the setting": lambda b: _resource(b, "Location").__setitem__("contained", [_leeds_patient()]),
    "in a Bundle contained in the notification": lambda b: _resource(b, "Communication").__setitem__(
        "contained", [{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _leeds_patient()}]}]),
    "a contained RelatedPerson without identifiers": lambda b: _resource(b, "Communication").__setitem__(
        "contained", [{"resourceType": "RelatedPerson", "patient": {"reference": "#x"},
                       "name": [{"family": OTHER_NAME}]}]),
    "a logical reference in a Provenance": lambda b: _add_entry(
        b, _provenance(b, {"identifier": _leeds_identifier()})),
    "an NHS number in a Provenance": lambda b: _add_entry(
        b, _provenance(b, {"identifier": {"system": cat.NHS_NUMBER, "value": LEEDS_NHS}})),
    "a reference in the notification's payload": lambda b: _resource(b, "Communication").__setitem__(
        "payload", [{"contentReference": {"identifier": _leeds_identifier()}}]),
    "an extension on the incident": lambda b: _resource(b, "AdverseEvent").__setitem__(
        "extension", [{"url": "https://example.org/other-child", "valueIdentifier": _leeds_identifier()}]),
    "the incident's subject as a logical reference": lambda b: _resource(b, "AdverseEvent").__setitem__(
        "subject", {"identifier": _leeds_identifier()}),
}


def _names_leeds_child(message: dict) -> bool:
    """The oracle: the Leeds child's id, NHS number or a hidden person's name is somewhere in the bytes."""
    raw = orjson.dumps(message)
    return any(secret.encode() in raw for secret in (LEEDS_CHILD, LEEDS_NHS, OTHER_NAME))


def _top_level_only(bundle: dict) -> routing.MessageFacts:
    """The broken twin: routing as it was, reading children only from the Bundle's top-level entries."""
    facts = routing.facts_of(bundle)
    facts.mentioned = list(facts.children)
    return facts


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return demo_network(tmp_path_factory.mktemp("minimisation"))


def _leaks(network, facts_of, message: dict) -> list[str]:
    """Participants without a see-every-child role that would receive a message naming the Leeds child."""
    plan = routing.resolve(facts_of(message), network.directory, None)
    return [r.participant for r in plan.routes if _names_leeds_child(message)
            and not routing._SEES_ALL_CHILDREN & set(r.roles) and r.participant not in (LEEDS, "lado-383")]


@pytest.fixture(scope="module")
def corpus() -> dict[str, dict]:
    out = {}
    for name, hide in HIDING_PLACES.items():
        message = scenario.serious_incident(KENT, 1)
        hide(message)
        assert _names_leeds_child(message), name
        out[name] = message
    return out


def test_kent_is_sent_the_plain_incident(network):
    plan = routing.resolve(routing.facts_of(scenario.serious_incident(KENT, 1)), network.directory, None)
    assert KENT in [r.participant for r in plan.routes]


@pytest.mark.parametrize("place", list(HIDING_PLACES))
def test_no_placing_authority_receives_another_authoritys_child_wherever_it_hides(network, corpus, place):
    message = corpus[place]
    assert _leaks(network, routing.facts_of, message) == []
    plan = routing.resolve(routing.facts_of(message), network.directory, None)
    assert KENT in plan.withheld  # withheld, and said so in the audit note


def test_the_broken_twin_that_reads_only_top_level_entries_leaks(network, corpus):
    leaking = {place for place, message in corpus.items() if _leaks(network, _top_level_only, message)}
    assert leaking == set(HIDING_PLACES) - {"a second top-level Patient"}


def test_the_standard_refuses_every_contained_resource(corpus):
    validator = Validator(HOT_PATH)
    for place, message in corpus.items():
        codes = {f.code for f in validator.iter_findings(message)}
        assert ("contained-not-allowed" in codes) == ("contained" in place or "Bundle contained" in place), place
        assert not any(LEEDS_CHILD in f.message or LEEDS_CHILD in f.location
                       for f in validator.iter_findings(message))


def test_a_valid_message_with_a_child_in_its_provenance_reaches_the_host_but_not_kent(tmp_path):
    network = demo_network(tmp_path)
    transport = network.transport()
    router = network.router(transport)
    try:
        message = scenario.serious_incident(KENT, 1)
        HIDING_PLACES["a logical reference in a Provenance"](message)
        assert Validator(HOT_PATH).is_valid(message)  # validation lets it through: routing must catch it
        transport.publish(INGRESS, scenario.signed_envelope(network, PROVIDER, message))
        decision = router.handle(transport.get(INGRESS))
        assert decision.decision == "accepted"
        assert KENT not in decision.recipients and "la-371" in decision.recipients
        assert transport.get(delivery_queue(KENT)) is None
        assert f"withheld from {KENT}" in (router.audit.records()[-1].get("reason") or "")
    finally:
        transport.close()


def test_a_referral_owned_by_another_areas_lado_is_refused_at_routing(network):
    message = scenario.allegation("allegation-referral", PROVIDER, "LADO-9")
    assert routing.resolve(routing.facts_of(message), network.directory, None).problem is None
    wrong = copy.deepcopy(message)
    _resource(wrong, "Task")["owner"]["identifier"]["value"] = "lado-886"
    assert Validator(HOT_PATH).is_valid(wrong)  # the message alone cannot tell: the host is in the directory
    plan = routing.resolve(routing.facts_of(wrong), network.directory, None)
    assert plan.routes == [] and plan.problem.startswith("wrong-owner:")
    assert "lado-371" in plan.problem and "lado-886" in plan.problem


def test_a_notification_about_a_referral_owned_by_another_areas_lado_is_refused_too(network):
    message = scenario.allegation("allegation-notification", "lado-371", "LADO-9")
    assert routing.resolve(routing.facts_of(message), network.directory, None).problem is None
    _resource(message, "Task")["owner"]["identifier"]["value"] = "lado-383"
    assert routing.resolve(routing.facts_of(message), network.directory, None).problem.startswith("wrong-owner:")
