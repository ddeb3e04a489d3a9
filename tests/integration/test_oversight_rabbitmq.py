"""Oversight over a real RabbitMQ: what the host authority's nodes received there is escalated, and the escalation
travels back through the broker, each participant connected as its own broker user."""

from __future__ import annotations

import orjson

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from broker.oversight.node import run_pass
from broker.oversight.rules import published
from broker.rabbitmq.setup import setup
from tests.unit.broker.test_oversight_node import LODGE, PROVIDER, _placement, _referral


def test_an_escalation_over_rabbitmq_reaches_the_placing_authority_and_the_icb(rabbit, tmp_path):
    participants = [d.Participant(PROVIDER, d.PROVIDER, "Example Care Ltd")]
    settings = [d.Setting(LODGE, "Example Lodge", "childrens-home", "la-371", "icb-QF7", ["ofsted"], PROVIDER)]
    keyed = [PROVIDER, "router", "la-371", "lado-371", "icb-QF7", "ofsted", "la-886"]
    folder = ExchangeFolder.create(tmp_path / "ex", participants, settings, transport_url=rabbit.admin_url,
                                   keyed=keyed)
    folder.credentials = setup(rabbit.ctl, rabbit.admin_url, folder.directory, folder.credentials_file,
                               delete_guest=False)

    def send(sender, messages):
        outbox = folder.outbox(sender)
        for message in messages:
            outbox.add(message)
        transport = folder.transport(as_participant=sender)
        try:
            return outbox.drain(transport)
        finally:
            transport.close()

    def route(count):
        transport = folder.transport()
        try:
            folder.router(transport).run(idle_timeout=5.0, max_messages=count)
        finally:
            transport.close()

    def receive(pid):
        transport = folder.transport(as_participant=pid)
        try:
            node = folder.node(pid, transport)
            node.run(idle_timeout=1.0)
            return node.inbox()
        finally:
            transport.close()

    send("la-886", [_placement("la-886", 1), _placement("la-886", 2)])
    send(PROVIDER, [_referral(n) for n in range(8)])
    route(10)
    receive("la-371")
    receive("lado-371")
    result = run_pass(folder.root, folder.directory, "la-371", published(), folder.outbox("la-371"))
    assert [e.rule for _, e in result.escalations] == ["OVR-ALLEGATIONS"]
    assert send("la-371", []) == 1
    route(1)
    for pid, children in (("icb-QF7", None), ("la-886", 2)):
        (item,) = [i for i in receive(pid) if i.event == "escalation"]
        task = orjson.loads(item.body)["entry"][2]["resource"]
        assert task["input"][0]["valueCoding"]["code"] == "OVR-ALLEGATIONS" and item.sender == "la-371"
        if children is not None:
            assert len(item.delivery.get("children", [])) == children
