"""Receiving nodes store each message once and ack after storing; outboxes keep what is not confirmed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from broker import db as sqlite_db
from broker.outbox import Outbox
from broker.router import DELIVERY
from broker.transport import INGRESS, Envelope, delivery_queue
from sgx import demo as scenario
from sgx.demo import LODGE, demo_network
from standard.errors import TransportUnavailable

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
    assert node.run(idle_timeout=0) == 0 and node.taken == 1  # refused: not counted as received
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


def _routed(tmp_path, count: int):
    network = demo_network(tmp_path)
    transport = network.transport()
    for n in range(1, count + 1):
        transport.publish(INGRESS, scenario.signed_envelope(network, "la-886",
                                                            scenario.placement("la-886", n, LODGE, TODAY)))
    network.router(transport).run(idle_timeout=0)
    return network, transport


@pytest.mark.parametrize("window", [None, 3600], ids=["node", "twin-with-an-age-window"])
def test_a_node_reading_its_queue_three_days_after_routing_stores_everything(tmp_path, window):
    from broker.node import Node

    network, transport = _routed(tmp_path, 20)
    three_days_later = datetime.now(UTC) + timedelta(days=3)
    node = Node("la-371", network.directory, transport, tmp_path / "inbox.db", now=lambda: three_days_later,
                window_seconds=window)
    node.run(idle_timeout=0)
    stored = len(node.inbox())
    if window is None:
        assert stored == 20 and transport.depth("dead-letter") == 0
    else:
        assert stored != 20  # the age-based twin dead-letters what waited


def test_a_delivery_that_breaks_the_node_is_handled_alone_and_its_batch_mates_are_stored(tmp_path, monkeypatch):
    network, transport = _routed(tmp_path, 3)
    node = network.node("la-371", transport)
    real = node.db.executemany
    poison = []

    def executemany(sql, rows):
        rows = list(rows)
        if not poison:
            poison.append(rows[1][0])
        if any(r[0] == poison[0] for r in rows):
            raise RuntimeError("simulated fault storing one message")
        return real(sql, rows)

    monkeypatch.setattr(node, "db", _Proxy(node.db, executemany=executemany))
    node.run(idle_timeout=0)
    assert len(node.inbox()) == 2  # the two batch-mates; the poison was retried alone to its delivery limit
    assert transport.depth("dead-letter") == 1
    router = network.router(transport)
    router.drain_dead_letters()  # given back to the node once (it may have crashed on a batch-mate)
    assert transport.depth(delivery_queue("la-371")) == 1 and router.audit.records()[-1]["decision"] == "returned"
    node.run(idle_timeout=0)
    assert len(node.inbox()) == 2 and transport.depth("dead-letter") == 1
    router.drain_dead_letters()  # the second time its original sender is told, naming the recipient
    told = []
    while (d := transport.get(delivery_queue("la-886"))) is not None:
        ack = orjson.loads(d.envelope.body)
        told += [(i["details"]["coding"][0]["code"], i.get("diagnostics")) for i in ack["entry"][1]["resource"]["issue"]
                 if i["details"]["coding"][0]["code"] == "delivery-failed"]
    assert told == [("delivery-failed", "recipient la-371: dead-lettered (delivery_limit)")]


class _Proxy:
    """A database connection with one method replaced."""

    def __init__(self, db, **replaced):
        self._db, self._replaced = db, replaced

    def __getattr__(self, name):
        return self._replaced.get(name) or getattr(self._db, name)


def test_a_drain_says_whether_it_stopped_for_an_outage_or_because_nothing_more_was_waiting(tmp_path):
    network = demo_network(tmp_path)
    outbox = network.outbox("la-886")
    for n in range(1, 4):
        outbox.add(scenario.placement("la-886", n, LODGE, TODAY))
    transport = network.transport()

    class DownAfterOne:
        def __init__(self):
            self.batches = 0

        def publish_many(self, items):
            self.batches += 1
            if self.batches > 1:
                raise TransportUnavailable("broker down")
            transport.publish_many(items)

    assert outbox.send_waiting(DownAfterOne(), batch=1, limit=3) == (1, True)  # one went, then the outage
    assert outbox.pending() == 2
    assert outbox.send_waiting(transport, batch=1, limit=5) == (2, False)  # less was waiting than the limit


def _page_size(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()


def test_the_databases_holding_whole_messages_are_made_with_large_pages(tmp_path):
    network, transport = _routed_placement(tmp_path)
    outbox = network.outbox("la-886")
    outbox.add(scenario.placement("la-886", 2, LODGE, TODAY))
    node = network.node("la-371", transport)
    assert node.run(idle_timeout=0) >= 1
    inbox = node.db.execute("PRAGMA database_list").fetchone()[2]
    for path in (outbox.path, transport.path, inbox):
        assert _page_size(path) == sqlite_db.MESSAGE_PAGE_SIZE, path
    assert _page_size(tmp_path / "router.db") == 4096  # small rows keep SQLite's default page


def test_an_outbox_made_before_keeps_its_pages_and_its_messages(tmp_path):
    network = demo_network(tmp_path)
    path = tmp_path / "old-outbox.db"
    sqlite3.connect(path).execute("CREATE TABLE earlier (x)").connection.close()  # 4 KB pages, as before
    outbox = Outbox(path, "la-886", network.signing_key("la-886"))
    message_id = outbox.add(scenario.placement("la-886", 1, LODGE, TODAY))
    outbox.close()
    assert _page_size(path) == 4096
    transport = network.transport()
    assert Outbox(path, "la-886", network.signing_key("la-886")).drain(transport) == 1
    assert transport.get(INGRESS).envelope.message_id == message_id
