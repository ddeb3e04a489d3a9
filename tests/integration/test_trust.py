"""Live trust and sender identity, probed as an attacker and an operator would.

A router running in a thread takes up a newly signed directory (a new key, a revocation) without a restart,
refuses a message signed before a revocation but processed after it, and stops routing once its directory
has expired. On a real RabbitMQ, the AMQP user_id is required and must be the signer and the sender the
headers name; rejections go to the connection's own user, never to a participant a header merely names.
Each safety check also runs against a broken twin (a router that never reloads, never checks expiry, or
trusts the sender header) and the test asserts that the twin fails it.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pika
import pytest
from click.testing import CliRunner
from pika.exceptions import ChannelClosedByBroker

from broker import directory as d
from broker import signing
from broker.audit import AuditLog
from broker.keys import SigningKey
from broker.rabbitmq.setup import load_queue_names, permissions_for, setup
from broker.router import SENDER, SIGNATURE, STATE_FILE, Router
from broker.transport import INGRESS, Envelope, delivery_queue, private_queue_name
from broker.transport.base import CONNECTION_USER
from broker.transport.rabbitmq import INGRESS_EXCHANGE, RabbitTransport
from sgx import demo as scenario
from sgx.cli import cli
from sgx.demo import LODGE, demo_network
from standard.errors import DirectoryExpired

TODAY = datetime.now(UTC).date().isoformat()


def _envelope(net, signer: str, message: dict, *, key: SigningKey | None = None, now: datetime | None = None,
              sender_header: str | None = None) -> Envelope:
    body = orjson.dumps(message)
    message_id = message["identifier"]["value"]
    event = message["entry"][0]["resource"]["eventCoding"]["code"]
    signature = signing.sign_message(body, key or net.keys[signer], sender=signer, message_id=message_id,
                                     event=event, now=now)
    return Envelope(message_id, body, {SIGNATURE: signature, SENDER: sender_header or signer})


def _record(root, message: dict, timeout: float = 15.0) -> dict | None:
    """The audit record of a message once the router has decided it (read from its own state database)."""
    wanted = message["identifier"]["value"]
    deadline = time.monotonic() + timeout
    log = AuditLog(root / STATE_FILE)
    while time.monotonic() < deadline:
        found = [r for r in log.records() if r["message_id"] == wanted]
        if found:
            return found[-1]
        time.sleep(0.05)
    return None


class _Running:
    """A router running in a thread until stopped, as `sgx broker route` runs it."""

    def __init__(self, router: Router):
        self.router, self.error, self._stop = router, None, threading.Event()
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            self.router.run(idle_timeout=None, should_stop=self._stop.is_set)
        except Exception as exc:  # noqa: BLE001 - kept for the test to look at
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=15)


def _resign(net, change) -> None:
    """The operator edits a copy of the directory, bumps the version and signs it into the folder's file."""
    draft = d.Directory.from_payload(net.directory.payload())
    change(draft)
    draft.version += 1
    (net.root / "directory.json").write_bytes(draft.sign(net.operator_key))


# -- live trust: a directory signed while the router runs ------------------------------------------------

def _live_trust(tmp_path, make_router) -> dict[str, dict | None]:
    """Route a message signed with a key added while the router runs, and one signed before its key was
    revoked while it waited in the queue; returns their audit records."""
    net = demo_network(tmp_path)
    anchor = net.operator_key.public
    publisher = net.transport()
    running = _Running(make_router(net, d.load(net.root / "directory.json", anchor)))
    try:
        before = scenario.placement("la-886", 1, LODGE, TODAY)
        publisher.publish(INGRESS, _envelope(net, "la-886", before))
        assert _record(net.root, before)["decision"] == "accepted"

        new_key = SigningKey.generate("la-383-2")
        _resign(net, lambda draft: draft.add_key("la-383", new_key))
        with_new_key = scenario.placement("la-383", 2, LODGE, TODAY)
        publisher.publish(INGRESS, _envelope(net, "la-383", with_new_key, key=new_key))
        added = _record(net.root, with_new_key)

        queued = scenario.placement("la-886", 3, LODGE, TODAY)
        envelope = _envelope(net, "la-886", queued, now=datetime.now(UTC) - timedelta(seconds=20))
        _resign(net, lambda draft: draft.revoke_key("la-886", "la-886-1"))  # signed before, processed after
        publisher.publish(INGRESS, envelope)
        revoked = _record(net.root, queued)
    finally:
        running.stop()
    return {"added": added, "revoked": revoked}


def _router(net, directory):
    return Router.in_folder(net.root, directory, net.transport(), net.keys["router"])


def _takes_up_new_trust(records) -> bool:
    return records["added"]["decision"] == "accepted" and records["revoked"]["decision"] == "rejected" \
        and "revoked-key" in records["revoked"]["reason"]


def test_a_running_router_takes_up_a_new_key_and_refuses_a_queued_message_whose_key_was_revoked(tmp_path):
    records = _live_trust(tmp_path / "live", _router)
    assert records["added"]["decision"] == "accepted"
    assert records["revoked"]["decision"] == "rejected"
    assert records["revoked"]["reason"].startswith("signature-invalid: revoked-key: key 'la-886-1' was revoked")
    assert _takes_up_new_trust(records)


def test_broken_twins_a_router_that_never_reloads_or_checks_only_the_signing_time_fail(tmp_path, monkeypatch):
    def never_reloads(net, directory):
        return _router(net, d.Directory.from_payload(directory.payload()))  # a copy: no file to follow

    assert not _takes_up_new_trust(_live_trust(tmp_path / "static", never_reloads))

    signing_time_only = d.Directory.public_key_for

    def ignore_processing_time(self, kid, sender, issued_at, *, checked_at=None):
        return signing_time_only(self, kid, sender, issued_at)

    monkeypatch.setattr(d.Directory, "public_key_for", ignore_processing_time)
    records = _live_trust(tmp_path / "iat-only", _router)
    assert records["added"]["decision"] == "accepted" and not _takes_up_new_trust(records)


def _after_expiry(tmp_path, make_router) -> dict:
    """Let the directory expire while the router runs (its clock is the test's), then send a message."""
    net = demo_network(tmp_path)
    clock = [datetime.now(UTC)]
    publisher = net.transport()
    router = make_router(net, lambda: clock[0])
    running = _Running(router)
    try:
        first = scenario.placement("la-886", 1, LODGE, TODAY)
        publisher.publish(INGRESS, _envelope(net, "la-886", first, now=clock[0]))
        assert _record(net.root, first)["decision"] == "accepted"
        clock[0] = datetime.fromisoformat(net.directory.expires_at) + timedelta(seconds=1)
        late = scenario.placement("la-886", 2, LODGE, TODAY)
        publisher.publish(INGRESS, _envelope(net, "la-886", late, now=clock[0]))
        record = _record(net.root, late, timeout=3)
        running.thread.join(timeout=2)  # the router checks at least every half second while idle
        stopped = not running.thread.is_alive()
    finally:
        running.stop()
    delivered = []
    while (item := publisher.get(delivery_queue("la-371"))) is not None:
        delivered.append(item.envelope.message_id)
        item.ack()
    return {"record": record, "stopped": stopped, "error": running.error, "waiting": publisher.depth(INGRESS),
            "delivered": delivered, "late": late["identifier"]["value"]}


def _refuses_after_expiry(outcome) -> bool:
    return outcome["record"] is None and outcome["late"] not in outcome["delivered"] and outcome["waiting"] == 1 \
        and outcome["stopped"] and isinstance(outcome["error"], DirectoryExpired)


def test_a_router_stops_routing_once_its_directory_has_expired_and_the_messages_wait(tmp_path):
    outcome = _after_expiry(tmp_path / "real", lambda net, now: net.router(net.transport(), now=now))
    assert outcome["stopped"] and isinstance(outcome["error"], DirectoryExpired)
    assert "expired" in str(outcome["error"])
    assert outcome["record"] is None and outcome["late"] not in outcome["delivered"]
    assert outcome["waiting"] == 1  # not lost: it waits in ingress for a current directory
    assert _refuses_after_expiry(outcome)


def test_broken_twin_a_router_that_never_checks_expiry_routes_on_a_stale_directory(tmp_path):
    class NeverChecks(Router):
        def refresh_directory(self):
            return self.directory

    def make(net, now):
        return NeverChecks.in_folder(net.root, net.directory, net.transport(), net.keys["router"], now=now)

    outcome = _after_expiry(tmp_path / "twin", make)
    assert outcome["record"]["decision"] == "accepted" and not _refuses_after_expiry(outcome)


def test_expiry_found_inside_a_batch_puts_the_messages_back(tmp_path):
    net = demo_network(tmp_path)
    clock = [datetime.now(UTC)]
    transport = net.transport()
    router = net.router(transport, now=lambda: clock[0])
    transport.publish(INGRESS, _envelope(net, "la-886", scenario.placement("la-886", 1, LODGE, TODAY)))
    delivery = transport.get(INGRESS)
    clock[0] = datetime.fromisoformat(net.directory.expires_at)
    with pytest.raises(DirectoryExpired):
        router.handle_batch([delivery])
    assert transport.depth(INGRESS) == 1 and router.audit.records() == []


def test_sgx_broker_route_refuses_an_expired_directory_with_exit_1_and_broker_revoke_says_what_it_did(tmp_path):
    net = demo_network(tmp_path)
    runner = CliRunner()
    out = runner.invoke(cli, ["broker", "revoke", "--dir", str(net.root), "--participant", "la-886"])
    assert out.exit_code == 0 and "embedded transport has no broker users" in out.output
    assert "still has unrevoked keys in the signed directory (la-886-1)" in out.output
    _resign(net, lambda draft: draft.revoke_key("la-886", "la-886-1"))
    out = runner.invoke(cli, ["broker", "revoke", "--dir", str(net.root), "--participant", "la-886"])
    assert "every key is revoked in directory version 2" in out.output
    (net.root / "directory.json").write_bytes(net.directory.sign(net.operator_key, valid_for=timedelta(seconds=-1)))
    out = runner.invoke(cli, ["broker", "route", "--dir", str(net.root), "--once"])
    assert out.exit_code == 1 and "expired" in out.output and "Traceback" not in out.output


def _node_after_router_key_rotation(tmp_path, static: bool) -> int:
    """The router starts signing with a new key, published in a directory signed after the node started;
    returns how many deliveries the node stored."""
    from broker.node import Node

    net = demo_network(tmp_path)
    transport = net.transport()
    loaded = d.load(net.root / "directory.json", net.operator_key.public)
    node = Node("la-371", d.Directory.from_payload(loaded.payload()) if static else loaded, transport,
                tmp_path / "la-371.db")
    assert node.run(idle_timeout=0) == 0  # running, nothing yet
    new_key = SigningKey.generate("router-2")
    _resign(net, lambda draft: draft.add_key("router", new_key))
    router = Router.in_folder(net.root, d.load(net.root / "directory.json", net.operator_key.public), transport,
                              new_key)
    transport.publish(INGRESS, _envelope(net, "la-886", scenario.placement("la-886", 1, LODGE, TODAY)))
    assert router.run(idle_timeout=0) == 1
    node.run(idle_timeout=0)
    return len(node.inbox())


def test_a_running_node_takes_up_a_new_router_key_and_a_node_that_never_reloads_refuses_it(tmp_path):
    assert _node_after_router_key_rotation(tmp_path / "live", static=False) == 1
    assert _node_after_router_key_rotation(tmp_path / "static", static=True) == 0  # the broken twin


def test_a_node_stops_once_its_directory_has_expired_and_the_delivery_waits(tmp_path):
    from broker.node import Node

    net = demo_network(tmp_path)
    transport = net.transport()
    router = net.router(transport)
    transport.publish(INGRESS, _envelope(net, "la-886", scenario.placement("la-886", 1, LODGE, TODAY)))
    router.run(idle_timeout=0)
    later = datetime.fromisoformat(net.directory.expires_at)
    node = Node("la-371", net.directory, transport, tmp_path / "la-371.db", now=lambda: later)
    with pytest.raises(DirectoryExpired):
        node.run(idle_timeout=0)
    delivery = transport.get(delivery_queue("la-371"))
    with pytest.raises(DirectoryExpired):
        node.receive_many([delivery])
    assert node.inbox() == [] and transport.depth(delivery_queue("la-371")) == 1


def test_signature_refusals_say_which_check_failed(tmp_path):
    from broker.jws import b64url, b64url_decode

    net = demo_network(tmp_path)
    router = net.router(net.transport())
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    good = _envelope(net, "la-886", message)
    protected, _, signature = good.headers[SIGNATURE].split(".")
    header = orjson.loads(b64url_decode(protected))
    del header["iat"]
    no_iat = f"{b64url(orjson.dumps(header))}..{signature}"
    cases = {
        "signature-invalid: signature-missing": Envelope(good.message_id, good.body, {SENDER: "la-886"}),
        "signature-invalid: unknown-kid": _envelope(net, "la-886", message, key=SigningKey.generate("la-886-9")),
        "signature-invalid: bad-signature": Envelope(good.message_id, good.body.replace(b"2011", b"2012", 1),
                                                     good.headers),
        "replay: iat-out-of-window": _envelope(net, "la-886", message, now=datetime.now(UTC) - timedelta(days=8)),
        "signature-invalid: header-member-missing-or-wrong": Envelope(good.message_id, good.body,
                                                                      {**good.headers, SIGNATURE: no_iat}),
        "unknown-sender: sender-mismatch": _envelope(net, "la-886", message, sender_header="la-383"),
    }
    for expected, envelope in cases.items():
        decision = router.process(envelope)
        assert decision.decision == "rejected"
        assert router.audit.records()[-1]["reason"].startswith(expected), expected


# -- identity on a real RabbitMQ ------------------------------------------------------------------------

VHOST = "trust"


@pytest.fixture(scope="module")
def amqp(rabbit, tmp_path_factory):
    """The demo network on its own vhost of the test node, set up as `sgx broker setup` does."""
    rabbit.ctl("add_vhost", VHOST)
    rabbit.ctl("set_permissions", "-p", VHOST, "sgx-admin", ".*", ".*", ".*")
    root = tmp_path_factory.mktemp("trust")
    admin_url = rabbit.url("sgx-admin", "admin-secret", vhost=VHOST)
    net = demo_network(root, admin_url)
    net.credentials = setup(rabbit.ctl, admin_url, net.directory, net.credentials_file, vhost=VHOST,
                            delete_guest=False)
    admin = RabbitTransport(admin_url, queue_names=load_queue_names(net.queue_names_file))
    yield rabbit, net, admin
    admin.close()


def _publish_raw(rabbit, net, connect_as: str, envelope: Envelope, user_id: str | None) -> None:
    """Publish to ingress as participant `connect_as`, with or without an AMQP user_id."""
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.url(connect_as, net.credentials[connect_as],
                                                                 vhost=VHOST)))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.basic_publish(INGRESS_EXCHANGE, INGRESS, envelope.body, pika.BasicProperties(
        delivery_mode=2, message_id=envelope.message_id, headers=dict(envelope.headers), user_id=user_id))
    conn.close()


def _drain(admin, pid: str) -> list[str]:
    """What reached a participant's queue: the acknowledgement code of each, or the event of a message."""
    out = []
    while (item := admin.get(delivery_queue(pid), timeout=0.3)) is not None:
        bundle = orjson.loads(item.envelope.body)
        resource = bundle["entry"][0]["resource"]
        if resource["eventCoding"]["code"] == "acknowledgement":
            out.append(bundle["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"])
        else:
            out.append(resource["eventCoding"]["code"])
        item.ack()
    return out


class _TrustsTheHeader(Router):
    """The broken twin: ignores the broker-checked user id and believes the sgx-sender header."""

    def _decide(self, envelope, batch):
        headers = {k: v for k, v in envelope.headers.items() if k != CONNECTION_USER}
        return super()._decide(Envelope(envelope.message_id, envelope.body, headers), batch)


def _identity_probe(amqp, router_class, n: int) -> dict:
    """Three publishes to ingress: a good one; one without user_id signed with another participant's key; one
    whose sgx-sender header names another participant. Returns each decision and what each queue got."""
    rabbit, net, admin = amqp
    router_link = net.transport(as_participant="router")
    router = router_class.in_folder(net.root, net.directory, router_link, net.keys["router"])
    seen: dict = {}
    try:
        good = scenario.placement("la-886", n, LODGE, TODAY)
        _publish_raw(rabbit, net, "la-886", _envelope(net, "la-886", good), "la-886")
        seen["good"] = router.handle(router_link.get(INGRESS, timeout=10))
        seen["good-queues"] = {pid: _drain(admin, pid) for pid in ("la-886", "la-383", "la-371")}

        # la-886's connection, no user_id, a message signed with la-383's key and naming la-383 throughout.
        as_leeds = scenario.placement("la-383", n + 1, LODGE, TODAY)
        _publish_raw(rabbit, net, "la-886", _envelope(net, "la-383", as_leeds), None)
        seen["no-user-id"] = router.handle(router_link.get(INGRESS, timeout=10))
        seen["no-user-id-queues"] = {pid: _drain(admin, pid) for pid in ("la-886", "la-383", "la-371")}
        seen["no-user-id-audit"] = _record(net.root, as_leeds, timeout=1)

        # la-886's own message and key and user_id, but the sgx-sender header names la-383.
        forged = scenario.placement("la-886", n + 2, LODGE, TODAY)
        _publish_raw(rabbit, net, "la-886", _envelope(net, "la-886", forged, sender_header="la-383"), "la-886")
        seen["forged-header"] = router.handle(router_link.get(INGRESS, timeout=10))
        seen["forged-header-queues"] = {pid: _drain(admin, pid) for pid in ("la-886", "la-383", "la-371")}
        for pid in ("icb-QF7",):
            _drain(admin, pid)
    finally:
        router_link.close()
    return seen


def _identity_holds(seen) -> bool:
    return (seen["good"].decision == "accepted"
            and seen["no-user-id"].decision == "rejected" and seen["no-user-id"].reason == "unknown-sender"
            and seen["no-user-id-queues"] == {"la-886": [], "la-383": [], "la-371": []}
            and seen["forged-header"].decision == "rejected"
            and seen["forged-header-queues"] == {"la-886": ["unknown-sender"], "la-383": [], "la-371": []})


def test_on_rabbitmq_the_user_id_is_required_and_rejections_go_to_the_connections_own_user(amqp):
    seen = _identity_probe(amqp, Router, 10)
    assert seen["good"].decision == "accepted"
    assert seen["good-queues"] == {"la-886": ["accepted"], "la-383": [], "la-371": ["placement-started"]}
    assert (seen["no-user-id"].decision, seen["no-user-id"].reason) == ("rejected", "unknown-sender")
    assert seen["no-user-id-queues"] == {"la-886": [], "la-383": [], "la-371": []}  # told nobody, delivered nothing
    audit = seen["no-user-id-audit"]
    assert audit["decision"] == "rejected" and "no AMQP user_id" in audit["reason"] and audit["sender"] == ""
    assert seen["forged-header"].reason == "unknown-sender" and seen["forged-header"].sender == "la-886"
    assert seen["forged-header-queues"] == {"la-886": ["unknown-sender"], "la-383": [], "la-371": []}
    assert _identity_holds(seen)


def test_broken_twin_a_router_that_trusts_the_sender_header_fails_on_rabbitmq(amqp):
    seen = _identity_probe(amqp, _TrustsTheHeader, 20)
    assert seen["no-user-id"].decision == "accepted"  # taken as la-383, whose key an attacker held
    assert seen["forged-header-queues"]["la-383"] == ["unknown-sender"]  # the innocent participant is told
    assert not _identity_holds(seen)


def test_a_publisher_cannot_set_the_connection_user_header_itself(amqp):
    rabbit, net, admin = amqp
    envelope = _envelope(net, "la-886", scenario.placement("la-886", 30, LODGE, TODAY))
    smuggled = Envelope(envelope.message_id, envelope.body, {**envelope.headers, CONNECTION_USER: "la-383"})
    _publish_raw(rabbit, net, "la-886", smuggled, None)
    router_link = net.transport(as_participant="router")
    delivery = router_link.get(INGRESS, timeout=10)
    assert delivery.envelope.headers[CONNECTION_USER] == ""
    delivery.ack()
    router_link.close()


def _probe(rabbit, net, queue: str) -> str:
    """What la-886 learns by a passive declare of `queue`: "depth N", "not found" or "refused"."""
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.url("la-886", net.credentials["la-886"], vhost=VHOST)))
    try:
        return f"depth {conn.channel().queue_declare(queue, passive=True).method.message_count}"
    except ChannelClosedByBroker as exc:
        return {404: "not found", 403: "refused"}.get(exc.reply_code, str(exc.reply_code))
    finally:
        if conn.is_open:
            conn.close()


def _broker_version(rabbit, net) -> tuple[int, ...]:
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.url("la-886", net.credentials["la-886"], vhost=VHOST)))
    version = conn._impl.server_properties["version"]
    conn.close()
    return tuple(int(p) for p in (version.decode() if isinstance(version, bytes) else version).split(".")[:3])


def test_a_participant_cannot_learn_another_participants_queue_depth(amqp):
    """RabbitMQ checks no permission on a passive declare before 4.2.6, so no permission regex can stop it there:
    a delivery queue's name is private instead. The names another participant can work out (the routing key
    `deliver.<id>`, the participant id) name no queue, whatever the broker's version."""
    rabbit, net, _ = amqp
    names = load_queue_names(net.queue_names_file)
    own, other = names[delivery_queue("la-886")], names[delivery_queue("la-383")]
    assert re.fullmatch(r"deliver\.la-383\.[0-9a-f]{32}", other) and own != delivery_queue("la-886")
    assert _probe(rabbit, net, own).startswith("depth ")  # its own queue, by the name it was given
    assert {_probe(rabbit, net, name) for name in (delivery_queue("la-383"), "la-383", "deliver.la-383.")} == \
        {"not found"}
    # Only the private name itself would tell (this broker's gap): the name is what keeps the depth private.
    told = _probe(rabbit, net, other)
    assert told.startswith("depth ") if _broker_version(rabbit, net) < (4, 2, 6) else told == "refused"


def test_broken_twin_a_guessable_queue_name_tells_another_participant_its_depth(amqp):
    """The same probe against a queue named as queues were before they had private names: on a broker before
    4.2.6 la-886 learns how many messages wait for the other participant, so the probe above can see the leak."""
    rabbit, net, _ = amqp
    legacy = RabbitTransport(rabbit.url("sgx-admin", "admin-secret", vhost=VHOST))
    legacy.declare(delivery_queue("twin-guessable"))  # no private name: the queue is its routing key
    legacy.publish(delivery_queue("twin-guessable"), Envelope("urn:uuid:twin-1", b"{}", {}))
    seen = _probe(rabbit, net, delivery_queue("twin-guessable"))
    legacy.close()
    assert seen == ("depth 1" if _broker_version(rabbit, net) < (4, 2, 6) else "refused")


def test_no_participant_permission_matches_another_participants_queue():
    directory = d.reference_directory()
    ids = sorted(directory.participants)
    queues = [delivery_queue(pid) for pid in ids] + [INGRESS, "dead-letter"]
    private = {pid: private_queue_name(pid) for pid in ids}
    queues += list(private.values())
    for pid in ids:
        configure, write, read = permissions_for(pid, private[pid])
        assert not [q for q in queues if re.search(configure, q)]
        assert [q for q in queues if re.search(read, q)] == [private[pid]]
        assert re.search(write, INGRESS_EXCHANGE) and not re.search(write, "sgx.deliver")


def test_sgx_broker_revoke_on_rabbitmq_closes_the_participants_connections_and_clears_its_permissions(amqp):
    from pika.exceptions import AMQPConnectionError

    rabbit, net, _ = amqp
    url = rabbit.url("la-352", net.credentials["la-352"], vhost=VHOST)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    conn.channel().basic_publish(INGRESS_EXCHANGE, INGRESS, b"{}", pika.BasicProperties(user_id="la-352"))
    out = CliRunner().invoke(cli, ["broker", "revoke", "--dir", str(net.root), "--participant", "la-352",
                                   "--rabbitmq-dir", str(rabbit.base), "--vhost", VHOST])
    assert out.exit_code == 0, out.output
    assert "RabbitMQ permissions cleared and 1 open connection(s) closed" in out.output
    with pytest.raises(AMQPConnectionError):
        for _ in range(50):
            conn.process_data_events(time_limit=0.1)
    with pytest.raises(AMQPConnectionError):
        pika.BlockingConnection(pika.URLParameters(url))  # no permission on the vhost any more
    net.credentials.pop("la-352")


def test_on_rabbitmq_a_running_router_refuses_a_queued_message_whose_key_was_revoked_after_it_started(amqp):
    rabbit, net, admin = amqp
    router = Router.in_folder(net.root, d.load(net.root / "directory.json", net.operator_key.public),
                              net.transport(as_participant="router"), net.keys["router"])
    lado = net.transport(as_participant="lado-371")
    running = _Running(router)
    try:
        before = scenario.allegation("allegation-notification", "lado-371", "LADO-371-0101")
        lado.publish(INGRESS, _envelope(net, "lado-371", before))
        assert _record(net.root, before)["decision"] == "accepted"
        queued = scenario.allegation("allegation-notification", "lado-371", "LADO-371-0102")
        envelope = _envelope(net, "lado-371", queued, now=datetime.now(UTC) - timedelta(seconds=20))
        _resign(net, lambda draft: draft.revoke_key("lado-371", "lado-371-1"))
        lado.publish(INGRESS, envelope)
        record = _record(net.root, queued)
    finally:
        running.stop()
        lado.close()
        router.transport.close()
    assert record["decision"] == "rejected" and "revoked-key" in record["reason"]
    assert running.error is None
