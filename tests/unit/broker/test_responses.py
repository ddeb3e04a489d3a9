"""Responses through the exchange (a person's acknowledgement, a decision, a request for more information): routed
to the original sender only, refused from anyone who never received the message, never carrying a child; and the
routing roles come from one table that fails loudly on a role it does not know. Each refusal also runs against a
broken twin that must let the message through."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from broker import routing
from broker.router import SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, delivery_queue
from sgx import demo as scenario
from sgx.demo import PROVIDER, demo_network
from standard import catalogue as cat
from standard import compose as c
from standard.errors import RoutingRuleUnknown
from standard.validator import Validator


@pytest.fixture()
def net(tmp_path):
    network = demo_network(tmp_path)
    transport = network.transport()
    router = network.router(transport)
    yield network, transport, router
    transport.close()


def _send(network, transport, router, sender, message):
    transport.publish(INGRESS, scenario.signed_envelope(network, sender, message))
    return router.handle(transport.get(INGRESS))


def _taken(transport, pid) -> list[Envelope]:
    out = []
    while (d := transport.get(delivery_queue(pid))) is not None:
        out.append(d.envelope)
        d.ack()
    return out


def _business(transport, pid) -> list[dict]:
    """What a participant received other than the router's own acknowledgements."""
    return [orjson.loads(e.body) for e in _taken(transport, pid) if e.headers.get(SENDER) != "router"]


def _incident(network, transport, router) -> str:
    """The provider's serious incident about a Kent child: received by Ofsted, Kent and Doncaster, not Leeds."""
    message = scenario.serious_incident("la-886", 1)
    decision = _send(network, transport, router, PROVIDER, message)
    assert decision.decision == "accepted" and "la-383" not in decision.recipients
    for pid in decision.recipients:
        _taken(transport, pid)
    _taken(transport, PROVIDER)
    return message["identifier"]["value"]


def test_a_decision_goes_back_to_the_original_sender_only(net):
    network, transport, router = net
    original = _incident(network, transport, router)
    decision = _send(network, transport, router, "la-371",
                     c.decision_recorded(original, "la-371", "visit-arranged", text="Visit on Monday."))
    assert (decision.decision, decision.recipients) == ("accepted", [PROVIDER])
    received = _business(transport, PROVIDER)
    assert [m["entry"][0]["resource"]["eventCoding"]["code"] for m in received] == ["decision-recorded"]
    for other in ("la-886", "ofsted", "icb-QF7", "la-383"):
        assert _business(transport, other) == []


@pytest.mark.parametrize("make", [
    lambda original, who: c.acknowledgement(original, who, "received"),
    lambda original, who: c.decision_recorded(original, who, "no-further-action"),
    lambda original, who: c.information_requested(original, who, "Which staff were on shift?"),
], ids=["acknowledgement", "decision", "information-request"])
def test_a_response_about_a_message_the_responder_never_received_is_refused(net, monkeypatch, make):
    network, transport, router = net
    original = _incident(network, transport, router)
    refused = _send(network, transport, router, "la-383", make(original, "la-383"))  # Leeds was not told
    assert (refused.decision, refused.reason) == ("rejected", "unauthorised-sender")
    assert _business(transport, PROVIDER) == []
    # A message that was never routed at all is refused alike: a response cannot probe which ids exist.
    unknown = _send(network, transport, router, "la-383", make("urn:uuid:00000000-0000-4000-8000-00000000beef",
                                                               "la-383"))
    assert (unknown.decision, unknown.reason) == ("rejected", "unauthorised-sender")
    # Broken twin: a router that does not check who received the message lets Leeds answer it.
    monkeypatch.setattr(routing, "responder_problem", lambda facts, originals: None)
    leaked = _send(network, transport, router, "la-383", make(original, "la-383"))
    assert (leaked.decision, leaked.recipients) == ("accepted", [PROVIDER])


def _naming_a_child(message: dict) -> dict:
    """A response with a child's local id tucked in an extension of its focus, which the validator lets by."""
    focus = message["entry"][1]["resource"]
    focus["extension"] = [{"url": "https://example.org/ext/about", "valueIdentifier": {
        "system": cat.LOCAL_CHILD_ID, "value": "383-0003", "assigner": {"identifier": {
            "system": cat.DFE_LA_CODE, "value": "383"}}}}]
    return message


def test_a_response_never_carries_a_child_to_the_original_sender(net, monkeypatch):
    network, transport, router = net
    original = _incident(network, transport, router)
    message = _naming_a_child(c.decision_recorded(original, "la-371", "monitoring"))
    assert Validator().is_valid(orjson.dumps(message))
    refused = _send(network, transport, router, "la-371", message)
    assert (refused.decision, refused.reason) == ("rejected", "no-recipients")
    assert _business(transport, PROVIDER) == []
    # Broken twin: routing blind to children outside Patient entries delivers the Leeds child to the provider.
    monkeypatch.setattr(routing, "children_anywhere", lambda bundle: [])
    leaked = _send(network, transport, router, "la-371", _naming_a_child(
        c.decision_recorded(original, "la-371", "monitoring")))
    assert (leaked.decision, leaked.recipients) == ("accepted", [PROVIDER])


def test_a_response_accepted_in_the_same_batch_as_its_original_is_routed(net):
    network, transport, router = net
    message = scenario.serious_incident("la-886", 2)
    ack = c.acknowledgement(message["identifier"]["value"], "la-371", "received")
    for sender, m in ((PROVIDER, message), ("la-371", ack)):
        transport.publish(INGRESS, scenario.signed_envelope(network, sender, m))
    deliveries = [transport.get(INGRESS), transport.get(INGRESS)]
    decisions = router.handle_batch(deliveries)
    assert [d.decision for d in decisions] == ["accepted", "accepted"]
    assert decisions[1].recipients == [PROVIDER]


# -- routing roles come from one table ---------------------------------------------------------------------
def test_every_receiving_role_of_the_catalogue_has_a_resolver():
    for event in cat.EVENTS:
        for rule in event.recipients:
            assert routing.resolver_for(event, rule)


def test_only_the_sending_roles_have_no_resolver():
    # "router" and "any" name who may send (the exchange itself; any participant); nobody is routed to them.
    assert cat.ROLE_CODES - set(routing.RESOLVERS) == {"router", "any"}
    assert set(routing.RESOLVERS) <= cat.ROLE_CODES


def _with_new_role(monkeypatch) -> routing.MessageFacts:
    """The catalogue's serious incident also routed to a role nobody taught the exchange."""
    event = cat.get_event("serious-incident")
    changed = replace(event, recipients=(*event.recipients, cat.Recipient("safeguarding-partnership")))
    monkeypatch.setitem(cat.EVENTS_BY_CODE, "serious-incident", changed)
    facts = routing.facts_of(scenario.serious_incident("la-886", 1))
    return facts


def test_a_role_without_a_resolver_fails_loudly(net, monkeypatch):
    network, _, router = net
    facts = _with_new_role(monkeypatch)
    with pytest.raises(RoutingRuleUnknown, match="safeguarding-partnership"):
        routing.resolve(facts, network.directory, router.register)


def _old_chain(facts: routing.MessageFacts, directory) -> list[str]:
    """Broken twin: the if/elif chain routing used to be, with no else, for setting roles."""
    setting = directory.setting(facts.settings[0])
    found = []
    for rule in cat.get_event(facts.event).recipients:
        if rule.of != "setting":
            continue
        if rule.role == "host-la":
            found.append(setting.host_la)
        elif rule.role == "regulator":
            found += setting.regulators
    return found


def test_the_old_chain_routed_a_new_role_to_nobody_without_a_word(net, monkeypatch):
    network, _, _ = net
    facts = _with_new_role(monkeypatch)
    assert "safeguarding-partnership" not in " ".join(_old_chain(facts, network.directory))  # silently dropped


def test_every_sending_role_of_the_catalogue_has_a_check():
    assert {role for event in cat.EVENTS for role in event.senders} <= set(routing.SENDER_CHECKS)
    assert set(routing.SENDER_CHECKS) <= cat.ROLE_CODES


def test_a_sending_role_without_a_check_fails_loudly(net, monkeypatch):
    network, _, _ = net
    event = cat.get_event("serious-incident")
    monkeypatch.setitem(cat.EVENTS_BY_CODE, "serious-incident", replace(event, senders=("safeguarding-partnership",)))
    facts = routing.facts_of(scenario.serious_incident("la-886", 1))
    with pytest.raises(RoutingRuleUnknown, match="may be sent by role 'safeguarding-partnership'"):
        routing.authorise(facts, network.directory)


def _old_sender_chain(facts: routing.MessageFacts, directory) -> str | None:
    """Broken twin: the if-chain authorisation used to be, with no else: an unknown role refuses every sender as
    if the sender were at fault."""
    sender = directory.participants[facts.sender]
    for role in cat.get_event(facts.event).senders:
        if role == "provider" and sender.kind == "provider":
            return None
    return "unauthorised-sender"


def test_the_old_sender_chain_blamed_the_sender_for_a_role_it_did_not_know(net, monkeypatch):
    network, _, _ = net
    event = cat.get_event("serious-incident")
    monkeypatch.setitem(cat.EVENTS_BY_CODE, "serious-incident", replace(event, senders=("safeguarding-partnership",)))
    facts = routing.facts_of(scenario.serious_incident("la-886", 1))
    assert _old_sender_chain(facts, network.directory) == "unauthorised-sender"  # silently the sender's fault


def test_a_new_source_or_condition_for_a_known_role_fails_loudly_too():
    event = cat.get_event("serious-incident")
    with pytest.raises(RoutingRuleUnknown, match="'host-la' of 'child'"):
        routing.resolver_for(event, cat.Recipient("host-la", of="child"))
    with pytest.raises(RoutingRuleUnknown, match="on condition 'weekends'"):
        routing.resolver_for(event, cat.Recipient("host-la", condition="weekends"))


def test_a_response_names_the_message_it_answers_in_its_routing_facts():
    facts = routing.facts_of(c.decision_recorded("urn:uuid:00000000-0000-4000-8000-000000000001", "la-371",
                                                 "monitoring"))
    assert facts.answers == "urn:uuid:00000000-0000-4000-8000-000000000001"
    assert facts.mentioned == []


def test_router_signature_headers_are_untouched_for_responses(net):
    network, transport, router = net
    original = _incident(network, transport, router)
    envelope = scenario.signed_envelope(network, "la-371", c.acknowledgement(original, "la-371", "received"))
    transport.publish(INGRESS, envelope)
    router.handle(transport.get(INGRESS))
    delivered = [e for e in _taken(transport, PROVIDER) if e.headers.get(SENDER) == "la-371"]
    assert delivered and delivered[0].headers[SIGNATURE] == envelope.headers[SIGNATURE]
