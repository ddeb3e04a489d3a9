"""One contract, two transports: the embedded SQLite transport and real RabbitMQ behave alike."""

from __future__ import annotations

import uuid

import pytest

from broker.transport import DEAD_LETTER, Envelope
from broker.transport.embedded import EmbeddedTransport
from broker.transport.rabbitmq import RabbitTransport
from sgx.errors import Unroutable


class Harness:
    """Opens transports on one exchange and can make a consumer 'crash' (vanish without acking)."""

    def __init__(self, kind, tmp_path, rabbit=None):
        self.kind, self.tmp_path, self.rabbit = kind, tmp_path, rabbit
        self.queue = f"deliver.contract-{uuid.uuid4().hex[:8]}"
        self.opened = []
        admin = self.open()
        admin.declare(self.queue)
        admin.declare(DEAD_LETTER)
        if kind == "amqp":
            import orjson

            policy = {"delivery-limit": 3, "dead-letter-exchange": "sgx.dead-letter",
                      "dead-letter-routing-key": "dead-letter"}
            rabbit.ctl("set_policy", "--apply-to", "queues", "--priority", "100", f"p-{self.queue}", f"^{self.queue}$",
                       orjson.dumps(policy).decode())
            while (d := admin.get(DEAD_LETTER, timeout=0.2)) is not None:
                d.ack()
        admin.close()  # an open consumer would keep prefetched dead letters from the test's own consumer

    def open(self):
        if self.kind == "embedded":
            t = EmbeddedTransport(self.tmp_path / "q.db", delivery_limit=3, lease_seconds=0.3)
        else:
            t = RabbitTransport(self.rabbit.admin_url, prefetch=1)
        self.opened.append(t)
        return t

    def crash(self, transport) -> None:
        """The consumer dies holding its deliveries."""
        if self.kind == "embedded":
            import time

            time.sleep(0.35)  # its lease lapses
        transport.close()

    def close(self):
        for t in self.opened:
            t.close()


@pytest.fixture(params=["embedded", "amqp"])
def harness(request, tmp_path):
    rabbit = request.getfixturevalue("rabbit") if request.param == "amqp" else None
    h = Harness(request.param, tmp_path, rabbit)
    yield h
    h.close()


def _env(n: int) -> Envelope:
    return Envelope(f"urn:uuid:{uuid.uuid4()}", f'{{"n": {n}}}'.encode(), {"sgx-signature": "x..y", "n": str(n)})


def test_published_messages_arrive_in_order_with_bytes_and_headers_intact(harness):
    t = harness.open()
    sent = [_env(i) for i in range(5)]
    t.publish_many([(harness.queue, e) for e in sent])
    got = []
    for _ in sent:
        d = t.get(harness.queue, timeout=5)
        got.append(d.envelope)
        d.ack()
    assert [g.body for g in got] == [s.body for s in sent]
    assert [g.message_id for g in got] == [s.message_id for s in sent]
    assert all(g.headers["sgx-signature"] == "x..y" for g in got)
    assert t.get(harness.queue, timeout=0.3) is None


def test_unknown_queue_is_unroutable_not_silently_dropped(harness):
    with pytest.raises(Unroutable):
        harness.open().publish("deliver.nobody-here", _env(0))


def test_a_consumer_that_dies_before_acking_gets_the_message_redelivered(harness):
    publisher, consumer = harness.open(), harness.open()
    publisher.publish(harness.queue, _env(1))
    first = consumer.get(harness.queue, timeout=5)
    assert first is not None and not first.redelivered
    harness.crash(consumer)
    again = harness.open().get(harness.queue, timeout=5)
    assert again.envelope.message_id == first.envelope.message_id
    assert again.redelivered and again.delivery_count == 2
    again.ack()


def test_rejected_with_requeue_counts_and_past_the_limit_is_dead_lettered(harness):
    t = harness.open()
    env = _env(2)
    t.publish(harness.queue, env)
    for _ in range(3 + 1):  # the limit allows 3 failed deliveries; the 4th failure dead-letters it
        d = t.get(harness.queue, timeout=5)
        assert d is not None
        d.reject(requeue=True)
    assert t.get(harness.queue, timeout=1) is None
    _assert_dead_lettered(t, env, "delivery_limit")


def test_reject_without_requeue_dead_letters_at_once(harness):
    t = harness.open()
    env = _env(3)
    t.publish(harness.queue, env)
    t.get(harness.queue, timeout=5).reject(requeue=False)
    _assert_dead_lettered(t, env, "rejected")


def _assert_dead_lettered(t, env, reason: str) -> None:
    dead = t.get(DEAD_LETTER, timeout=5)
    assert dead.envelope.message_id == env.message_id
    assert dead.envelope.headers["x-death-reason"] == reason
    dead.ack()


def test_acked_messages_are_gone_for_good(harness):
    t = harness.open()
    t.publish(harness.queue, _env(4))
    t.get(harness.queue, timeout=5).ack()
    harness.crash(t)
    assert harness.open().get(harness.queue, timeout=0.5) is None


def test_a_batch_of_publishes_goes_to_rabbitmq_in_one_write(rabbit, monkeypatch):
    """pika writes each frame on its own (three a publish); the transport joins what waits to go."""
    from pika.adapters.utils.io_services_utils import _AsyncTransportBase

    queue = f"deliver.writes-{uuid.uuid4().hex[:8]}"
    t = RabbitTransport(rabbit.admin_url)
    t.declare(queue)
    first = _env(0)
    t.publish(queue, first)  # opens the channel and selects confirms: round trips of their own
    writes: list[int] = []
    send = _AsyncTransportBase._sigint_safe_send

    def counting_send(sock, data):
        writes.append(len(data))
        return send(sock, data)

    monkeypatch.setattr(_AsyncTransportBase, "_sigint_safe_send", staticmethod(counting_send))
    batch = [_env(i) for i in range(1, 51)]
    t.publish_many([(queue, e) for e in batch])
    assert len(writes) <= 2, f"{len(writes)} writes for 50 publishes"
    got = [t.get(queue, timeout=5) for _ in range(51)]
    assert [d.envelope.message_id for d in got] == [e.message_id for e in [first, *batch]]
    assert [d.envelope.body for d in got[1:]] == [e.body for e in batch]
    t.ack_many(got)
    # Bodies larger than a write (and than a frame) fill the socket and are sent in pieces: still intact.
    large = [Envelope(f"urn:uuid:{uuid.uuid4()}", bytes([i]) * (300_000 + i), {"n": str(i)}) for i in range(20)]
    t.publish_many([(queue, e) for e in large])
    got = [t.get(queue, timeout=5) for _ in large]
    assert [d.envelope.body for d in got] == [e.body for e in large]
    t.ack_many(got)
    t.close()
