"""Receiving nodes store each message once and ack after storing; outboxes keep what is not confirmed."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from broker.router import DELIVERY
from broker.transport import INGRESS, Envelope, delivery_queue
from sgx import demo as scenario
from sgx.demo import LODGE, demo_network
from sgx.errors import TransportUnavailable

TODAY = datetime.now(UTC).date().isoformat()


def _routed_placement(tmp_path):
    """A network in which one placement has been routed to la-371 and icb-QF7."""
    network = demo_network(tmp_path)
    transport = network.transport()
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    transport.publish(INGRESS, scenario.signed_envelope(network, "la-886", message))
    network.router(transport).run(idle_timeout=0)
    return network, transport


def test_node_stores_once_even_when_delivered_twice(tmp_path):
    network, transport = _routed_placement(tmp_path)
    delivered = transport.get(delivery_queue("la-371"))
    transport.publish(delivery_queue("la-371"), delivered.envelope)  # at-least-once: a second copy
    delivered.reject(requeue=True)
    node = network.node("la-371", transport)
    assert node.run(idle_timeout=0) == 2  # the redelivered message and its copy
    assert len(node.inbox()) == 1
    assert node.inbox()[0].verified.startswith("signature by la-886")


def test_node_refuses_a_forged_delivery_note_and_dead_letters_it(tmp_path):
    network, transport = _routed_placement(tmp_path)
    delivered = transport.get(delivery_queue("icb-QF7"))
    note = orjson.loads(delivered.envelope.headers[DELIVERY])
    note["recipient"] = "la-383"
    forged = Envelope(delivered.envelope.message_id, delivered.envelope.body,
                      {**delivered.envelope.headers, DELIVERY: orjson.dumps(note).decode()})
    delivered.ack()
    transport.publish(delivery_queue("la-383"), forged)
    node = network.node("la-383", transport)
    node.run(idle_timeout=0)
    assert [i for i in node.inbox() if i.event != "acknowledgement"] == []
    assert transport.get("dead-letter").envelope.message_id == forged.message_id


def test_outbox_keeps_messages_while_the_transport_is_down_and_sends_them_once_it_is_back(tmp_path):
    network = demo_network(tmp_path)
    outbox = network.outbox("la-886")
    messages = [scenario.placement("la-886", n, LODGE, TODAY) for n in range(1, 4)]
    for message in messages:
        outbox.add(message)
    outbox.add(messages[0])  # adding the same message again queues nothing
    assert outbox.pending() == 3

    class Down:
        def publish_many(self, items):
            raise TransportUnavailable("broker down")

    assert outbox.drain(Down()) == 0
    assert outbox.pending() == 3
    transport = network.transport()
    assert outbox.drain(transport) == 3
    assert outbox.pending() == 0
    assert transport.depth(INGRESS) == 3
    assert outbox.drain(transport) == 0  # nothing sent twice
