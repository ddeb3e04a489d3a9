"""Faults on a real RabbitMQ that must not stop the exchange or lose a message without its sender knowing:
an oversized signature header, a recipient without a queue, a delivery its recipient's node refuses, a body over
the broker's limit, and a broker restart under a running router. Each property also runs against a broken twin
(a router without the check) and the test asserts the twin breaks it."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from broker.jws import b64url
from broker.rabbitmq.setup import load_queue_names, set_max_message_size, setup
from broker.router import DELIVERY, SENDER, SIGNATURE, Router
from broker.transport import DEAD_LETTER, INGRESS, Envelope, delivery_queue
from broker.transport.base import CONNECTION_USER
from broker.transport.rabbitmq import RabbitTransport
from sgx import demo as scenario
from sgx.demo import LODGE, demo_network
from standard.errors import UnrecoverableBrokerError

TODAY = datetime.now(UTC).date().isoformat()
QUIET = {"publish_attempts": 1, "retry_delay": 0.0}  # a twin's failures show at once instead of after retries


@pytest.fixture(scope="module")
def shared(rabbit, tmp_path_factory):
    """A demo network set up in a vhost of its own on the shared node (no other module's messages are seen), with
    users and queues for a sender (la-886) and the recipients of its placements at Example Lodge (la-371 and
    icb-QF7); la-373, the host of Example House, has a key but no queue."""
    vhost = f"faults-{uuid.uuid4().hex[:8]}"
    rabbit.ctl("add_vhost", vhost)
    rabbit.ctl("set_permissions", "-p", vhost, "sgx-admin", ".*", ".*", ".*")
    url = rabbit.url("sgx-admin", "admin-secret", vhost)
    root = tmp_path_factory.mktemp("faults")
    net = demo_network(root, url)
    net.credentials = setup(rabbit.ctl, url, net.directory, net.credentials_file, vhost=vhost,
                            participants=["la-886", "la-371", "icb-QF7"], delete_guest=False)
    time.sleep(1)  # let the new quorum queues settle (docs/operations.md)
    return net


_OPEN: list[RabbitTransport] = []


@pytest.fixture()
def net(shared):
    """The shared network with every queue empty (what an earlier test left is acked away); the connections a
    test opened are closed after it (a consumer left open would take the next test's messages)."""
    admin = RabbitTransport(shared.transport_url, queue_names=load_queue_names(shared.queue_names_file))
    for queue in (INGRESS, DEAD_LETTER, *(delivery_queue(p) for p in ("la-886", "la-371", "icb-QF7"))):
        while (d := admin.get(queue, timeout=0.2)) is not None:
            d.ack()
    admin.close()
    yield shared
    while _OPEN:
        _OPEN.pop().close()


def _as(net, participant: str, **options) -> RabbitTransport:
    rest = net.transport_url.split("@", 1)[1]
    transport = RabbitTransport(f"amqp://{participant}:{net.credentials[participant]}@{rest}",
                                queue_names=load_queue_names(net.queue_names_file), **options)
    _OPEN.append(transport)
    return transport


def _router(net, cls=Router, **options) -> Router:
    return cls.in_folder(net.root, net.directory, _as(net, "router", **QUIET), net.keys["router"], **options)


def _drain(net, participant: str) -> list[Envelope]:
    transport = _as(net, participant)
    out = []
    while (d := transport.get(delivery_queue(participant), timeout=0.5)) is not None:
        out.append(d.envelope)
        d.ack()
    transport.close()
    return out


def _acks(envelopes: list[Envelope]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """(answered message id, [(ack code, diagnostics)]) of each acknowledgement."""
    out = []
    for e in envelopes:
        ack = orjson.loads(e.body)
        outcome = next(x["resource"] for x in ack["entry"] if x["resource"]["resourceType"] == "OperationOutcome")
        out.append(("urn:uuid:" + ack["entry"][0]["resource"]["response"]["identifier"],
                    [(i["details"]["coding"][0]["code"], i.get("diagnostics")) for i in outcome["issue"]]))
    return out


def _run(router: Router, seconds: float = 2.0) -> Exception | None:
    """Run a router until it has been idle for `seconds`; the error it stopped on, if any."""
    try:
        router.run(idle_timeout=seconds, give_up_after=15, sleep=lambda _s: time.sleep(0.2))
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    return None


def _oversized_signature(net, message: dict, size: int) -> Envelope:
    """A validly signed message whose signature header is `size` bytes (its protected header padded)."""
    body = orjson.dumps(message)
    key = net.keys["la-886"]
    header = {"alg": "EdDSA", "typ": "sgx-message+jws", "kid": key.kid, "iss": "la-886",
              "jti": message["identifier"]["value"], "sgx-evt": "placement-started",
              "iat": int(datetime.now(UTC).timestamp()), "pad": ""}
    bare = len(b64url(orjson.dumps(header))) + 2 + 86
    header["pad"] = "A" * int((size - bare) * 3 / 4)
    protected = b64url(orjson.dumps(header))
    signature = key.private.sign(f"{protected}.{b64url(body)}".encode("ascii"))
    return Envelope(message["identifier"]["value"], body, {SIGNATURE: f"{protected}..{b64url(signature)}",
                                                           SENDER: "la-886"})


class _NoHeaderLimit(Router):
    """Broken twin: takes any signature header and publishes whatever headers it made, as the router did."""

    max_signature_bytes = max_delivery_header_bytes = 10**9


def _oversized_batch(net):
    innocent = [scenario.placement("la-886", n, LODGE, TODAY) for n in (1, 2, 3)]
    poison = _oversized_signature(net, scenario.placement("la-886", 9, LODGE, TODAY), 129_000)
    sender = _as(net, "la-886")
    sender.publish_many([(INGRESS, scenario.signed_envelope(net, "la-886", innocent[0])), (INGRESS, poison),
                         *[(INGRESS, scenario.signed_envelope(net, "la-886", m)) for m in innocent[1:]]])
    sender.close()
    return [m["identifier"]["value"] for m in innocent], poison.message_id


@pytest.mark.parametrize("router_cls", [Router, _NoHeaderLimit], ids=["router", "twin-without-header-limit"])
def test_an_oversized_signature_header_is_refused_alone_and_its_batch_mates_delivered_once(net, router_cls):
    innocent, poison = _oversized_batch(net)  # the sender's publish fits the frame; a re-publish with a note would not
    error = _run(_router(net, router_cls))
    delivered = Counter(e.message_id for e in _drain(net, "la-371"))
    acks = _acks(_drain(net, "la-886"))
    refusal = [issues for m, issues in acks if m == poison]
    holds = (error is None and delivered == Counter(innocent)
             and sorted(m for m, issues in acks if issues[0][0] == "accepted") == sorted(innocent)
             and len(refusal) == 1 and refusal[0][0][0] == "payload-invalid" and "too-large" in refusal[0][0][1])
    if router_cls is Router:
        assert error is None
        assert delivered == Counter(innocent)  # each innocent message once, none lost
        assert refusal == [[("payload-invalid", refusal[0][0][1])]] and "too-large" in refusal[0][0][1]
        assert holds
    else:
        assert not holds, (error, delivered, acks)


class _AssumesEveryQueue(Router):
    """Broken twin: routes to every recipient without asking whether it has a queue, as the router did."""

    def _reachable(self, participant_id: str) -> bool:
        return True


@pytest.mark.parametrize("router_cls", [Router, _AssumesEveryQueue], ids=["router", "twin-assuming-queues"])
def test_a_recipient_without_a_queue_is_recorded_once_and_the_others_get_the_message_once(net, router_cls):
    from sgx.demo import HOUSE

    messages = [scenario.placement("la-886", n, HOUSE, TODAY) for n in (1, 2)]  # to la-373 (no queue) and icb-QF7
    sender = _as(net, "la-886")
    sender.publish_many([(INGRESS, scenario.signed_envelope(net, "la-886", m)) for m in messages])
    sender.close()
    router = _router(net, router_cls)
    error = _run(router)
    ids = sorted(m["identifier"]["value"] for m in messages)
    delivered = Counter(e.message_id for e in _drain(net, "icb-QF7"))
    acks = _acks(_drain(net, "la-886"))
    expected = [("accepted", "recipient icb-QF7: queued for delivery"),
                ("delivery-failed", "recipient la-373: not reachable (no queue on the exchange)")]
    holds = (error is None and delivered == Counter(ids) and sorted(m for m, _ in acks) == ids
             and all(issues == expected for _, issues in acks))
    if router_cls is Router:
        assert error is None
        assert delivered == Counter(ids)  # once each
        assert sorted(m for m, _ in acks) == ids and all(issues == expected for _, issues in acks)
        audit = [r for r in router.audit.records() if r["message_id"] in ids]
        assert [r["decision"] for r in audit] == ["accepted", "accepted"]
        assert all("not reachable: la-373" in r["reason"] for r in audit)
    else:
        assert not holds, (error, delivered, acks)


class _BlamesTheRouter(Router):
    """Broken twin: attributes a dead letter to the broker's publisher, as the router did (on RabbitMQ the
    publisher of every delivery is the router, so the original sender was never told)."""

    def _account_for(self, delivery) -> None:
        env = delivery.envelope
        sender = env.headers.get(CONNECTION_USER, env.headers.get(SENDER, ""))
        from broker.router import _Batch

        batch = _Batch()
        if sender in self.directory.participants and sender != "router":
            self._acknowledge(batch, sender, env.message_id, "delivery-failed",
                              [("error", "transient", "delivery-failed", "dead-lettered")])
        if batch.outgoing:
            self.transport.publish_many(batch.outgoing)
        delivery.ack()


@pytest.mark.parametrize("router_cls", [Router, _BlamesTheRouter], ids=["router", "twin-blaming-the-router"])
def test_a_delivery_its_recipient_refuses_is_reported_to_the_original_sender(net, router_cls):
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    sender = _as(net, "la-886")
    sender.publish(INGRESS, scenario.signed_envelope(net, "la-886", message))
    sender.close()
    router = _router(net, router_cls)
    assert _run(router) is None
    recipient = _as(net, "la-371")
    refused = recipient.get(delivery_queue("la-371"), timeout=5)
    assert refused.envelope.headers[CONNECTION_USER] == "router"  # RabbitMQ names the publisher: the router
    assert DELIVERY in refused.envelope.headers
    refused.reject(requeue=False)  # as a node does with a delivery it cannot verify
    recipient.close()
    time.sleep(0.5)
    router.drain_dead_letters()
    answers = [issues for m, issues in _acks(_drain(net, "la-886")) if m == message["identifier"]["value"]]
    told = [issues for issues in answers if issues[0][0] == "delivery-failed"]
    if router_cls is Router:
        assert told == [[("delivery-failed", "recipient la-371: dead-lettered (rejected)")]]
        record = router.audit.records()[-1]
        assert (record["decision"], record["sender"], record["recipients"]) == ("dead-lettered", "la-886",
                                                                                 ["la-371"])
    else:
        assert told == []


def test_the_broker_refuses_a_body_over_the_limit_and_a_broker_without_it_does_not(net, rabbit):
    big = Envelope(f"urn:uuid:{uuid.uuid4()}", b"x" * (6 * 1024 * 1024), {})
    sender = _as(net, "la-886", **QUIET)
    with pytest.raises(UnrecoverableBrokerError, match="max size"):
        sender.publish(INGRESS, big)
    sender.close()
    set_max_message_size(rabbit.ctl, 128 * 1024 * 1024)  # the twin: a broker left at RabbitMQ's default
    try:
        unlimited = _as(net, "la-886", **QUIET)
        unlimited.publish(INGRESS, big)  # taken: the router would have to refuse it
        unlimited.close()
    finally:
        set_max_message_size(rabbit.ctl)


def _restart_case(tmp_path):
    """A broker of its own (it is restarted) with the demo network set up on it."""
    from broker.rabbitmq.server import RabbitNode

    node = RabbitNode(tmp_path / "rabbitmq")
    node.start()
    net = demo_network(tmp_path / "net", node.url())
    net.credentials = setup(node.ctl, node.url(), net.directory, net.credentials_file,
                            participants=["la-886", "la-371", "icb-QF7"], delete_guest=False)
    time.sleep(3)  # quorum queues settle before the node is stopped (docs/operations.md)
    return node, net


def _routing_in_background(router: Router, **options):
    stop, errors = threading.Event(), []

    def work() -> None:
        try:
            router.run(idle_timeout=None, should_stop=stop.is_set, sleep=lambda s: time.sleep(min(s, 1.0)), **options)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return stop, errors, thread


def _publish(net, count: int) -> list[str]:
    messages = [scenario.placement("la-886", n, LODGE, TODAY) for n in range(count)]
    sender = _as(net, "la-886")  # retries its publish while the broker comes back
    sender.publish_many([(INGRESS, scenario.signed_envelope(net, "la-886", m)) for m in messages])
    sender.close()
    return [m["identifier"]["value"] for m in messages]


def _received(net, participant: str, wanted: int, within: float) -> Counter:
    """What arrives for a participant until `wanted` messages have or `within` seconds pass."""
    got: Counter = Counter()
    deadline = time.monotonic() + within
    transport = _as(net, participant)
    while sum(got.values()) < wanted and time.monotonic() < deadline:
        d = transport.get(delivery_queue(participant), timeout=0.5)
        if d is not None:
            got[d.envelope.message_id] += 1
            d.ack()
    transport.close()
    return got


def test_the_router_reconnects_after_a_broker_restart_and_a_twin_that_gives_up_at_once_fails(tmp_path):
    node, net = _restart_case(tmp_path)
    try:
        router = _router(net)
        stop, errors, thread = _routing_in_background(router, give_up_after=120)
        before = _publish(net, 5)
        assert _received(net, "la-371", 5, 30) == Counter(before)
        node.stop()
        node.start()
        after = _publish(net, 5)
        assert _received(net, "la-371", 5, 60) == Counter(after)  # routed by the same router, once each
        stop.set()
        thread.join(30)
        assert errors == [] and not thread.is_alive()
        router.transport.close()  # its consumer would otherwise take the twin's messages
        assert _received(net, "la-371", 1, 2) == Counter()  # and nothing twice

        # The twin gives up after 3 s without the broker (a restart takes longer), as the router gave up at once.
        twin = _router(net)
        stop, errors, thread = _routing_in_background(twin, give_up_after=3)
        first = _publish(net, 5)
        assert _received(net, "la-371", 5, 30) == Counter(first), errors
        node.stop()
        node.start()
        missed = _publish(net, 5)
        assert _received(net, "la-371", 5, 15) != Counter(missed)  # nobody routes them
        thread.join(30)
        assert len(errors) == 1 and "gave up" in str(errors[0])  # and it says so: never a quiet stop
        stop.set()
    finally:
        while _OPEN:
            _OPEN.pop().close()
        node.stop()
