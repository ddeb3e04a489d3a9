"""One contract, two transports: the embedded SQLite transport and real RabbitMQ behave alike.

RabbitMQ's delivery limit and dead-letter policy are the ones `sgx broker setup` installs, not written here.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from broker.rabbitmq.server import free_port
from broker.rabbitmq.setup import setup
from broker.router import Router
from broker.transport import DEAD_LETTER, Envelope, capabilities_of, delivery_queue, open_transport
from broker.transport.base import DEFAULT_DELIVERY_LIMIT
from broker.transport.embedded import EmbeddedDelivery, EmbeddedTransport
from broker.transport.rabbitmq import RabbitTransport
from sgx.demo import placement, signed_envelope
from standard.errors import TransportUnavailable, Unroutable

LIMIT = DEFAULT_DELIVERY_LIMIT  # the same on both: the embedded default and the policy `sgx broker setup` sets


@pytest.fixture(scope="module")
def broker_setup(rabbit, tmp_path_factory):
    """`sgx broker setup` on the session's node: queues' delivery limit and dead-letter policy come from it."""
    setup(rabbit.ctl, rabbit.admin_url, d.reference_directory(), tmp_path_factory.mktemp("setup") / "passwords.json",
          participants=["contract"], delete_guest=False)
    return rabbit


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
            while (dead := admin.get(DEAD_LETTER, timeout=0.2)) is not None:  # left by earlier tests
                dead.ack()
        admin.close()  # an open consumer would keep prefetched dead letters from the test's own consumer

    def open(self, prefetch: int = 1):
        if self.kind == "embedded":
            t = EmbeddedTransport(self.tmp_path / "q.db", delivery_limit=LIMIT, lease_seconds=0.3)
        else:
            t = RabbitTransport(self.rabbit.admin_url, prefetch=prefetch)
        self.opened.append(t)
        return t

    def sender(self, participant_id: str):
        """A connection as the participant (RabbitMQ takes a message's sender from the connection's user)."""
        if self.kind == "embedded":
            return self.open()
        password = uuid.uuid4().hex
        users = self.rabbit.ctl("list_users", "--silent").split()
        self.rabbit.ctl("change_password" if participant_id in users else "add_user", participant_id, password)
        # It may publish into the test's own queues only (`sgx broker setup` sets its real permissions).
        self.rabbit.ctl("set_permissions", "-p", "/", participant_id, "^$", r"^sgx\.deliver$", "^$")
        t = RabbitTransport(self.rabbit.url(participant_id, password))
        self.opened.append(t)
        return t

    def unreachable(self):
        """A transport whose broker (or queue database) cannot be reached."""
        if self.kind == "embedded":
            blocker = self.tmp_path / "not-a-folder"
            blocker.write_text("")
            return open_transport(str(blocker / "q.db"))
        return RabbitTransport(f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", publish_attempts=2,
                               retry_delay=0.05)

    def crash(self, transport) -> None:
        """The consumer dies holding its deliveries."""
        if self.kind == "embedded":
            time.sleep(0.35)  # its lease lapses
        transport.close()

    def close(self):
        for t in self.opened:
            t.close()


@pytest.fixture(params=["embedded", "amqp"])
def harness(request, tmp_path):
    rabbit = request.getfixturevalue("broker_setup") if request.param == "amqp" else None
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
    for _ in range(LIMIT + 1):  # the limit allows LIMIT failed deliveries; the next failure dead-letters it
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


def _drain(t, queue: str, wanted: set[str]) -> Counter:
    """How many times each wanted message id is waiting in `queue` (acking everything taken)."""
    seen: Counter = Counter()
    while (delivery := t.get(queue, timeout=0.5)) is not None:
        if delivery.envelope.message_id in wanted:
            seen[delivery.envelope.message_id] += 1
        delivery.ack()
    return seen


def test_a_batch_with_an_unroutable_message_delivers_the_others_once_and_names_only_that_one(harness):
    t = harness.open(prefetch=10)
    batch = [(harness.queue, _env(1)), ("deliver.nobody-here", _env(2)), (harness.queue, _env(3))]
    with pytest.raises(Unroutable) as refused:
        t.publish_many(batch)
    assert refused.value.undelivered == (1,)
    assert "deliver.nobody-here" in str(refused.value)
    got = _drain(t, harness.queue, {e.message_id for _, e in batch})
    assert got == Counter({batch[0][1].message_id: 1, batch[2][1].message_id: 1})


def test_an_unreachable_transport_is_a_typed_recoverable_error(harness):
    with pytest.raises(TransportUnavailable, match="outbox|queue database"):
        harness.unreachable().publish_many([(harness.queue, _env(0))])


def test_depth_counts_waiting_messages_not_those_a_consumer_holds(harness):
    publisher, consumer = harness.open(), harness.open(prefetch=1)
    assert publisher.depth(harness.queue) == 0
    publisher.publish_many([(harness.queue, _env(i)) for i in range(3)])
    assert _eventually(lambda: publisher.depth(harness.queue)) == 3
    held = consumer.get(harness.queue, timeout=5)
    assert _eventually(lambda: publisher.depth(harness.queue)) == 2
    held.ack()
    consumer.close()  # a live RabbitMQ consumer would take (hold) the next one as soon as this is acked
    assert _eventually(lambda: publisher.depth(harness.queue)) == 2


def _eventually(read, settle: float = 2.0):
    """A broker reports queue depth from its own bookkeeping a moment after a change: read until it is stable."""
    deadline = time.monotonic() + settle
    value = read()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = read()
        if again == value:
            return value
        value = again
    return value


def test_ack_many_settles_every_delivery_for_good(harness):
    t = harness.open(prefetch=10)
    sent = [_env(i) for i in range(4)]
    t.publish_many([(harness.queue, e) for e in sent])
    taken = [t.get(harness.queue, timeout=5) for _ in sent]
    assert [d.envelope.message_id for d in taken] == [e.message_id for e in sent]
    t.ack_many(taken[:3])
    harness.crash(t)
    again = harness.open()
    last = again.get(harness.queue, timeout=5)  # only the one not acked comes back
    assert last.envelope.message_id == sent[3].message_id and last.redelivered
    last.ack()
    assert again.get(harness.queue, timeout=0.5) is None


def _take_together(harness, consumer, consumers: int = 2, per_take: int = 4) -> Counter:
    """Several consumers (made by `consumer()`) take batches from one queue at once; how often each message id was
    handed out."""
    t = harness.open()
    sent = [_env(i) for i in range(12)]
    t.publish_many([(harness.queue, e) for e in sent])
    taken: Counter = Counter()
    held = [consumer() for _ in range(consumers)]
    harness.opened.extend(held)
    for _ in range(len(sent)):
        for each in held:
            got = each.get_many(harness.queue, per_take)
            taken.update(d.envelope.message_id for d in got)
    return taken


def test_get_many_takes_what_waits_in_order_and_consumers_never_share_a_message(harness):
    t = harness.open(prefetch=10)
    sent = [_env(i) for i in range(5)]
    t.publish_many([(harness.queue, e) for e in sent])
    first = [] if harness.kind == "embedded" else [t.get(harness.queue, timeout=5)]  # RabbitMQ pushes after a wait
    got = first + t.get_many(harness.queue, 3 - len(first))
    assert [d.envelope.message_id for d in got] == [e.message_id for e in sent[:3]]
    assert t.get_many(harness.queue, 0) == []
    t.ack_many(got)
    rest = [t.get(harness.queue, timeout=5), *t.get_many(harness.queue, 10)]
    assert [d.envelope.message_id for d in rest if d] == [e.message_id for e in sent[3:]]
    t.ack_many(rest)
    if harness.kind == "embedded":  # one process, two consumers: RabbitMQ's side is the broker's own
        # Leases long enough that none lapses during the test (the harness's lapse in 0.3 s, for crash tests).
        taken = _take_together(harness, lambda: EmbeddedTransport(harness.tmp_path / "q.db", lease_seconds=30))
        assert len(taken) == 12 and set(taken.values()) == {1}, taken


class _LeaseBlindTransport(EmbeddedTransport):
    """Broken twin: takes the oldest messages whether or not another consumer holds them."""

    def get_many(self, queue, limit):
        rows = self._db().execute("SELECT seq, message_id, body, headers, delivery_count FROM messages WHERE queue = ? "
                                  "ORDER BY seq LIMIT ?", (queue, limit)).fetchall()
        return [EmbeddedDelivery(self, seq, "x", Envelope(mid, body, orjson.loads(h)), n + 1)
                for seq, mid, body, h, n in rows]


def test_the_same_check_catches_a_consumer_that_takes_messages_another_holds(tmp_path):
    harness = Harness("embedded", tmp_path)
    taken = _take_together(harness, lambda: _LeaseBlindTransport(tmp_path / "q.db", lease_seconds=30))
    assert max(taken.values()) > 1


class _LeaseBlindAcks(EmbeddedTransport):
    """Broken twin: settles a batch by position alone, whoever holds the message now."""

    def ack_many(self, deliveries):
        self._db().executemany("DELETE FROM messages WHERE seq = ?", [(d._seq,) for d in deliveries])


@pytest.mark.parametrize("kind", [EmbeddedTransport, _LeaseBlindAcks], ids=["embedded", "twin-lease-blind-acks"])
def test_embedded_ack_many_leaves_a_message_whose_lease_lapsed_to_its_new_holder(tmp_path, kind):
    """Leases are the embedded transport's own (RabbitMQ ties an ack to the channel that took the message)."""
    harness = Harness("embedded", tmp_path)
    t, other = kind(tmp_path / "q.db", delivery_limit=LIMIT, lease_seconds=0.3), harness.open()
    harness.opened.append(t)
    env = _env(9)
    t.publish(harness.queue, env)
    stale = t.get_many(harness.queue, 1)
    time.sleep(0.35)  # the lease lapses; another consumer takes the message
    fresh = other.get_many(harness.queue, 1)
    assert [d.envelope.message_id for d in fresh] == [env.message_id] and fresh[0].redelivered
    t.ack_many(stale)  # too late: it must not settle the message the other consumer now holds
    harness.crash(other)
    again = harness.open().get(harness.queue, timeout=5)
    if kind is EmbeddedTransport:
        assert again is not None and again.envelope.message_id == env.message_id
        again.ack()
    else:  # the twin settled the other consumer's message: it is gone, never delivered to anyone
        assert again is None


def test_capabilities_describe_the_transport_without_checking_its_class(harness, tmp_path):
    t = harness.open()
    if harness.kind == "embedded":
        assert t.capabilities.declares_queues and not t.capabilities.participant_users
        assert capabilities_of(str(tmp_path / "q.db")) == t.capabilities
    else:
        assert t.capabilities.participant_users and not t.capabilities.declares_queues
        assert not t.capabilities.encrypted
        assert capabilities_of(harness.rabbit.admin_url) == t.capabilities
        assert capabilities_of(harness.rabbit.admin_url.replace("amqp://", "amqps://")).encrypted


# -- the router over each transport: one recipient without a queue ----------------------------------------------

class RetriesTheBatch(Router):
    """A broken twin: reacts to a partly unroutable batch by failing it, so the batch is retried message by
    message (how the router reacted before the transports shared the contract)."""

    def _undeliverable(self, batch, items):
        raise Unroutable("retry the batch", undelivered=())


def _route_a_batch_with_one_recipient_missing(harness, tmp_path, router_class) -> tuple[dict, Router, list[str]]:
    """Three placements routed as one batch; the third's host ICB has no queue. Returns, per queue, how many
    times each message arrived, the router and the message ids."""
    tag = uuid.uuid4().hex[:6]
    icb = f"icb-contract-{tag}"  # a participant the broker has no queue for
    urn_ok, urn_missing = f"SC8{int(tag, 16) % 100000:05d}", f"SC7{int(tag, 16) % 100000:05d}"
    net = ExchangeFolder.create(tmp_path / "net", [d.Participant(icb, d.ICB, "Contract ICB")], [
        d.Setting(urn_ok, "Contract House", "childrens-home", "la-371", "icb-QF7", ["ofsted"]),
        d.Setting(urn_missing, "Contract Lodge", "childrens-home", "la-371", icb, ["ofsted"])],
        keyed=["router", "la-886", "la-371", "icb-QF7", icb])
    t = harness.open(prefetch=10)
    for pid in ("la-371", "icb-QF7", "la-886"):
        t.declare(delivery_queue(pid))
    today = datetime.now(UTC).date().isoformat()
    messages = [placement("la-886", 1, urn_ok, today), placement("la-886", 2, urn_ok, today),
                placement("la-886", 3, urn_missing, today)]
    ids = [m["identifier"]["value"] for m in messages]
    harness.sender("la-886").publish_many([(harness.queue, signed_envelope(net, "la-886", m))  # the batch's ingress
                                           for m in messages])
    deliveries = [t.get(harness.queue, timeout=5) for _ in messages]
    router = router_class.in_folder(net.root, net.directory, t, net.keys["router"])
    # The router asks whether a recipient has a queue before routing to it; here the ICB's queue was there when
    # it asked and is gone by the publish (the race this contract covers).
    router._queues.add(delivery_queue(icb))
    try:
        router.handle_batch(deliveries)
    finally:
        harness.crash(t)  # whatever the router left unacked goes back to the queue, for the count below
    reader = harness.open(prefetch=50)
    arrived = {pid: _drain(reader, delivery_queue(pid), set(ids)) for pid in ("la-371", "icb-QF7")}
    arrived["ingress"] = _drain(reader, harness.queue, set(ids))
    acks = []
    while (ack := reader.get(delivery_queue("la-886"), timeout=0.5)) is not None:
        acks.append(orjson.loads(ack.envelope.body))
        ack.ack()
    arrived["acks"] = Counter(a["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"] for a in acks
                              if f"urn:uuid:{a['entry'][0]['resource']['response']['identifier']}" in ids)
    return arrived, router, ids


def test_the_router_delivers_no_duplicate_and_reports_only_the_unroutable_message(harness, tmp_path):
    arrived, router, ids = _route_a_batch_with_one_recipient_missing(harness, tmp_path, Router)
    assert arrived["la-371"] == Counter({i: 1 for i in ids})  # each exactly once
    assert arrived["icb-QF7"] == Counter({ids[0]: 1, ids[1]: 1})
    assert not arrived["ingress"]  # the batch was acked: nothing to route again
    assert arrived["acks"] == Counter({"accepted": 3, "delivery-failed": 1})
    undeliverable = [r for r in router.audit.records() if r["decision"] == "undeliverable"]
    assert [r["message_id"] for r in undeliverable] == [ids[2]]
    assert undeliverable[0]["reason"].startswith("unroutable: no queue deliver.icb-contract-")


def test_the_same_check_catches_a_router_that_retries_a_partly_delivered_batch(harness, tmp_path):
    arrived, _, ids = _route_a_batch_with_one_recipient_missing(harness, tmp_path, RetriesTheBatch)
    duplicated = {i for i, n in arrived["la-371"].items() if n > 1}
    assert duplicated, "the broken twin should deliver the batch-mates twice"
    assert arrived["la-371"] != Counter({i: 1 for i in ids})
