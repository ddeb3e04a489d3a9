"""The router's decisions on the embedded transport: routing rules, refusals, duplicates, audit, register."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from broker.router import SENDER, SIGNATURE, Router
from broker.transport import INGRESS, Envelope, delivery_queue
from sgx import demo as scenario
from sgx.demo import LODGE, PROVIDER, demo_network


@pytest.fixture()
def net(tmp_path):
    network = demo_network(tmp_path)
    transport = network.transport()
    router = network.router(transport)
    yield network, transport, router
    transport.close()


def _send(network, transport, router, sender, message, **kw):
    envelope = scenario.signed_envelope(network, sender, message, **kw)
    transport.publish(INGRESS, envelope)
    return router.handle(transport.get(INGRESS))


def _inbox(transport, pid):
    out = []
    while (d := transport.get(delivery_queue(pid))) is not None:
        out.append(d.envelope)
        d.ack()
    return out


TODAY = datetime.now(UTC).date().isoformat()


def test_placement_goes_to_host_la_and_host_icb_only_and_enters_the_register(net):
    network, transport, router = net
    decision = _send(network, transport, router, "la-886", scenario.placement("la-886", 1, LODGE, TODAY))
    assert decision.decision == "accepted"
    assert decision.recipients == ["icb-QF7", "la-371"]
    assert list(router.register.children_at(LODGE, TODAY)) == ["la-886"]
    note = orjson.loads(_inbox(transport, "la-371")[0].headers["sgx-delivery"])
    assert note["roles"] == ["host-la"]


def test_no_participant_ever_receives_another_authoritys_child(net):
    network, transport, router = net
    for la, n in [("la-886", 1), ("la-886", 2), ("la-383", 3)]:
        _send(network, transport, router, la, scenario.placement(la, n, LODGE, TODAY))
    for la, n in [("la-886", 1), ("la-383", 3)]:
        _send(network, transport, router, PROVIDER, scenario.serious_incident(la, n))
    _send(network, transport, router, "lado-371",
          scenario.allegation("allegation-notification", "lado-371", "LADO-1"))
    for placing in ("la-886", "la-383", "lado-886", "lado-383", "la-352"):
        for envelope in _inbox(transport, placing):
            bundle = orjson.loads(envelope.body)
            for entry in bundle["entry"]:
                resource = entry["resource"]
                if resource["resourceType"] == "Patient":
                    assigner = resource["identifier"][0]["assigner"]["identifier"]["value"]
                    assert placing.endswith(assigner), (placing, assigner)
            note = orjson.loads(envelope.headers.get("sgx-delivery", "{}"))
            own = {router.register.pseudonym(placing.replace("lado", "la"), f"{placing[-3:]}-{n:04d}")
                   for n in range(10)}
            assert set(note.get("children", [])) <= own


def test_a_fan_out_message_naming_a_child_is_withheld_from_other_placing_authorities(net):
    network, transport, router = net
    _send(network, transport, router, "la-886", scenario.placement("la-886", 1, LODGE, TODAY))
    _send(network, transport, router, "la-383", scenario.placement("la-383", 3, LODGE, TODAY))
    b = scenario.c.MessageBuilder("independent-visitor-report", PROVIDER)
    setting = b.add(scenario.c.setting(LODGE, "Example Lodge"))
    b.add(scenario.c.report("reg44-visit-report", setting, TODAY, PROVIDER, {
        "visit-date": TODAY, "visit-announced": True, "children-spoken-to": 2, "children-safeguarded": "yes",
        "wellbeing-promoted": "yes"}), focus=True)
    decision = _send(network, transport, router, PROVIDER, b.build())
    assert decision.recipients == ["icb-QF7", "la-371", "la-383", "la-886", "ofsted"]


def test_unauthorised_sender_is_refused_audited_and_told(net):
    network, transport, router = net
    message = scenario.placement("la-383", 1, LODGE, TODAY, sender=PROVIDER)
    decision = _send(network, transport, router, PROVIDER, message)
    assert (decision.decision, decision.reason) == ("rejected", "unauthorised-sender")
    assert router.audit.records()[-1]["decision"] == "rejected"
    ack = orjson.loads(_inbox(transport, PROVIDER)[-1].body)
    assert ack["entry"][0]["resource"]["response"]["code"] == "fatal-error"
    assert _inbox(transport, "la-371") == []


def test_a_placing_la_may_not_notify_another_authoritys_child(net):
    network, transport, router = net
    decision = _send(network, transport, router, "la-383", scenario.placement("la-886", 1, LODGE, TODAY,
                                                                              sender="la-383"))
    assert decision.reason == "unauthorised-sender"


def test_invalid_payload_is_refused_with_its_finding_codes(net):
    network, transport, router = net
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    del message["timestamp"]
    decision = _send(network, transport, router, "la-886", message)
    assert decision.reason == "payload-invalid"
    assert decision.findings == ["profile-cardinality at Bundle.timestamp"]
    ack = orjson.loads(_inbox(transport, "la-886")[-1].body)
    issue = ack["entry"][1]["resource"]["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "payload-invalid"
    assert "Bundle.timestamp" in issue["diagnostics"]


def test_duplicate_is_not_delivered_twice_and_reused_id_is_a_replay(net):
    network, transport, router = net
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    assert _send(network, transport, router, "la-886", message).decision == "accepted"
    assert _send(network, transport, router, "la-886", message).decision == "duplicate"
    assert len(_inbox(transport, "la-371")) == 1
    changed = copy.deepcopy(message)
    changed["entry"][1]["resource"]["birthDate"] = "2011-04-09"
    assert _send(network, transport, router, "la-886", changed).reason == "replay"


def test_signature_refusals_and_spoofed_sender(net):
    network, transport, router = net
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    body = orjson.dumps(message)
    good = scenario.signed_envelope(network, "la-886", message)
    transport.publish(INGRESS, Envelope(good.message_id, body.replace(b"2011", b"2012", 1), good.headers))
    assert router.handle(transport.get(INGRESS)).reason == "signature-invalid"
    spoofed = scenario.signed_envelope(network, "la-383", message)  # la-383 signs a message naming la-886 as sender
    transport.publish(INGRESS, spoofed)
    assert router.handle(transport.get(INGRESS)).reason == "unknown-sender"
    as_other = Envelope(good.message_id, body, {SIGNATURE: good.headers[SIGNATURE], SENDER: "la-383"})
    transport.publish(INGRESS, as_other)
    assert router.handle(transport.get(INGRESS)).reason == "unknown-sender"


def test_every_decision_is_in_an_intact_audit_chain_without_personal_data(net):
    network, transport, router = net
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    _send(network, transport, router, "la-886", message)
    _send(network, transport, router, "la-886", message)
    _send(network, transport, router, PROVIDER, scenario.placement("la-383", 1, LODGE, TODAY, sender=PROVIDER))
    records = router.audit.records()
    assert [r["decision"] for r in records] == ["accepted", "duplicate", "rejected"]
    assert router.audit.verify() == []
    text = orjson.dumps(records).decode()
    assert "886-0001" not in text and "9990000" not in text and "2011-04" not in text


def test_placement_ended_takes_the_child_off_the_register(net):
    network, transport, router = net
    _send(network, transport, router, "la-886", scenario.placement("la-886", 1, LODGE, "2026-01-01"))
    b = scenario.c.MessageBuilder("placement-ended", "la-886")
    child = scenario._child(b, "la-886", 1)
    episode = b.add(scenario.c.looked_after_episode(child, "la-886", "C2", "2025-06-01"))
    setting = b.add(scenario.c.setting(LODGE, "Example Lodge"))
    b.add(scenario.c.placement(child, episode, setting, "K2", "2026-01-01", end="2026-02-01",
                               end_reason=("ssda903-reason-placement-change", "ALLEG")), focus=True)
    assert _send(network, transport, router, "la-886", b.build()).decision == "accepted"
    assert router.register.children_at(LODGE, "2026-01-15") == {"la-886": [router.register.pseudonym(
        "la-886", "886-0001")]}
    assert router.register.children_at(LODGE, "2026-03-01") == {}


def test_poison_message_is_dead_lettered_and_the_sender_told(net, monkeypatch):
    network, transport, router = net
    transport.delivery_limit = 1
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    transport.publish(INGRESS, scenario.signed_envelope(network, "la-886", message))

    def broken(*_a, **_k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(router, "process_batch", broken)
    router.run(idle_timeout=0)
    router.run(idle_timeout=0)
    assert transport.depth(INGRESS) == 0
    codes = [orjson.loads(e.body)["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"]
             for e in _inbox(transport, "la-886")]
    assert codes == ["delivery-failed"]
    assert router.audit.records()[-1]["decision"] == "dead-lettered"


def test_one_poison_message_does_not_fail_its_batch_mates(net, monkeypatch):
    network, transport, router = net
    good = [scenario.placement("la-886", n, LODGE, TODAY) for n in (1, 2)]
    poison = scenario.placement("la-886", 3, LODGE, TODAY)
    for message in (good[0], poison, good[1]):
        transport.publish(INGRESS, scenario.signed_envelope(network, "la-886", message))
    real = router._decide

    def decide(envelope, batch):
        if envelope.message_id == poison["identifier"]["value"]:
            raise RuntimeError("simulated bug")
        return real(envelope, batch)

    monkeypatch.setattr(router, "_decide", decide)
    router.run(idle_timeout=0)
    accepted = [r["message_id"] for r in router.audit.records() if r["decision"] == "accepted"]
    assert accepted == [g["identifier"]["value"] for g in good]
    dead = [r["message_id"] for r in router.audit.records() if r["decision"] == "dead-lettered"]
    assert dead == [poison["identifier"]["value"]]  # retried to its limit alone, then dead-lettered


def test_a_batch_is_recorded_in_one_commit_of_the_state_database(net):
    network, transport, router = net
    envelopes = [scenario.signed_envelope(network, "la-886", scenario.placement("la-886", n, LODGE, TODAY))
                 for n in range(1, 4)]
    statements: list[str] = []
    router.seen.db.set_trace_callback(statements.append)
    decisions = router.process_batch(envelopes)
    router.seen.db.set_trace_callback(None)
    assert [d.decision for d in decisions] == ["accepted"] * 3
    assert sum(s.strip().upper() == "COMMIT" for s in statements) == 1
    assert len(router.audit.records()) == 3 and len(router.register.children_at(LODGE, TODAY)["la-886"]) == 3


def test_routers_side_by_side_route_each_message_once_and_keep_one_audit_chain(tmp_path):
    from broker.router import Claims, run_side_by_side

    network = demo_network(tmp_path)
    publisher = network.transport()
    messages = [scenario.placement("la-886", n, LODGE, TODAY) for n in range(1, 41)]
    envelopes = [scenario.signed_envelope(network, "la-886", m) for m in messages]
    for envelope in envelopes + envelopes:  # every message twice: at-least-once delivery
        publisher.publish(INGRESS, envelope)
    claims = Claims()
    routers = [Router.in_folder(network.root, network.directory, network.transport(), network.keys["router"],
                                claims=claims) for _ in range(2)]
    assert run_side_by_side(routers, idle_timeout=0.5, batch_size=7) == 80
    decisions = [r["decision"] for r in routers[0].audit.records()]
    assert decisions.count("accepted") == 40 and decisions.count("duplicate") == 40
    assert routers[0].audit.verify() == []
    assert len(_inbox(publisher, "la-371")) == 40 and len(_inbox(publisher, "icb-QF7")) == 40
    assert len(routers[1].register.children_at(LODGE, TODAY)["la-886"]) == 40


# -- age, retention, refusals with their reasons (issue 10) -----------------------------------------------------
def router_records(network):
    from broker.audit import AuditLog
    from broker.router import STATE_FILE

    return AuditLog(network.root / STATE_FILE).records()


def _routed_later(network, transport, router_cls, hours: float, count: int = 3):
    """Messages sent now, routed `hours` later (the router was down meanwhile); the decisions."""
    for n in range(1, count + 1):
        transport.publish(INGRESS, scenario.signed_envelope(network, "la-886",
                                                            scenario.placement("la-886", n, LODGE, TODAY)))
    later = datetime.now(UTC) + timedelta(hours=hours)
    network.publish_directory(valid_for=timedelta(days=90))  # the directory outlives the simulated outage
    router = router_cls.in_folder(network.root, network.directory, transport, network.keys["router"],
                                  now=lambda: later)
    return [router.handle(transport.get(INGRESS)) for _ in range(count)]


class _AgeBasedRouter(Router):
    """Broken twin: judges freshness by a 300 s window from when it gets round to a message."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, max_age_seconds=300, **kwargs)


@pytest.mark.parametrize("hours", [3, 24 * 6])
def test_a_message_that_waited_out_a_router_outage_is_routed_and_an_age_based_twin_refuses_it(tmp_path, hours):
    network = demo_network(tmp_path)
    transport = network.transport()
    decisions = _routed_later(network, transport, Router, hours)
    assert [d.decision for d in decisions] == ["accepted"] * 3
    assert len(_inbox(transport, "la-371")) == 3
    twin = demo_network(tmp_path / "twin")
    twin_transport = twin.transport()
    refused = _routed_later(twin, twin_transport, _AgeBasedRouter, hours)
    assert [d.decision for d in refused] != ["accepted"] * 3
    assert {d.reason for d in refused} == {"replay"}
    assert all("iat-out-of-window" in r["reason"] for r in router_records(twin))  # stale, not a reused id
    assert _inbox(twin_transport, "la-371") == []


def test_a_message_older_than_a_week_is_refused_as_stale_with_its_reason_and_the_sender_told(tmp_path):
    network = demo_network(tmp_path)
    transport = network.transport()
    decisions = _routed_later(network, transport, Router, 24 * 8, count=1)
    assert (decisions[0].decision, decisions[0].reason) == ("rejected", "replay")
    ack = orjson.loads(_inbox(transport, "la-886")[-1].body)
    issue = ack["entry"][1]["resource"]["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "replay"  # the standard's code for issued-at outside the window
    assert issue["diagnostics"].startswith("replay: iat-out-of-window: issued-at is more than 604800 s from now")


def test_message_ids_are_remembered_for_the_retention_period_then_forgotten(tmp_path):
    from broker.router import RETENTION_SECONDS

    network = demo_network(tmp_path)
    transport = network.transport()
    clock = [datetime.now(UTC)]
    network.publish_directory(valid_for=timedelta(days=90))  # the directory outlives the simulated weeks
    router = Router.in_folder(network.root, network.directory, transport, network.keys["router"],
                              now=lambda: clock[0])
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    envelope = scenario.signed_envelope(network, "la-886", message)
    assert router.process(envelope).decision == "accepted"
    clock[0] += timedelta(days=6)  # within the age limit: the same message again is a duplicate
    assert router.process(envelope).decision == "duplicate"
    assert router.prune_seen(force=True) == 0
    clock[0] += timedelta(seconds=RETENTION_SECONDS)
    assert router.prune_seen(force=True) == 1
    assert router.seen.digest_of(message["identifier"]["value"]) is None
    # Forgotten, but not replayable: a message that old is past the age limit.
    assert router.process(envelope).reason == "replay"
    assert "iat-out-of-window" in router.audit.records()[-1]["reason"]
    with pytest.raises(ValueError, match="remembered longer"):
        Router.in_folder(network.root, network.directory, transport, network.keys["router"],
                         max_age_seconds=RETENTION_SECONDS)


def test_duplicates_are_acknowledged_as_duplicates(net):
    network, transport, router = net
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    _send(network, transport, router, "la-886", message)
    _send(network, transport, router, "la-886", message)
    codes = [orjson.loads(e.body)["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"]
             for e in _inbox(transport, "la-886")]
    assert codes == ["accepted", "duplicate"]


def test_signature_refusals_carry_their_reason_and_a_missing_header_is_not_a_key_error(net):
    network, transport, router = net
    good = scenario.signed_envelope(network, "la-886", scenario.placement("la-886", 1, LODGE, TODAY))
    transport.publish(INGRESS, Envelope(good.message_id, good.body, {SENDER: "la-886"}))
    decision = router.handle(transport.get(INGRESS))
    assert decision.reason == "signature-invalid"
    assert router.audit.records()[-1]["reason"] == "signature-invalid: signature-missing: no sgx-signature header"
    transport.publish(INGRESS, Envelope(good.message_id, good.body.replace(b"2011", b"2012", 1), good.headers))
    router.handle(transport.get(INGRESS))
    assert router.audit.records()[-1]["reason"] == ("signature-invalid: bad-signature: the signature does not verify "
                                                    "over the bytes received")
    diagnostics = [orjson.loads(e.body)["entry"][1]["resource"]["issue"][0].get("diagnostics")
                   for e in _inbox(transport, "la-886")]
    assert diagnostics == ["signature-invalid: signature-missing: no sgx-signature header",
                           "signature-invalid: bad-signature: the signature does not verify over the bytes received"]


def test_limits_leave_room_for_what_the_router_adds_within_one_frame(net):
    from broker.router import FRAME_MAX, MAX_DELIVERY_HEADER_BYTES, MAX_SIGNATURE_BYTES, header_bytes

    network, transport, router = net
    decision = _send(network, transport, router, "la-886", scenario.placement("la-886", 1, LODGE, TODAY))
    assert decision.decision == "accepted"
    delivered = _inbox(transport, "la-371")[0]
    added = header_bytes(delivered.headers) - header_bytes({SIGNATURE: delivered.headers[SIGNATURE]})
    assert 300 < added < 2048  # the note, its signature and the sender header: what the router adds
    # The largest signature a sender may send, plus the router's largest note and overhead, fit one frame.
    assert MAX_SIGNATURE_BYTES + added < MAX_DELIVERY_HEADER_BYTES < FRAME_MAX


def test_an_over_long_signature_header_is_refused_before_anything_is_published(net):
    network, transport, router = net
    good = scenario.signed_envelope(network, "la-886", scenario.placement("la-886", 1, LODGE, TODAY))
    padded = Envelope(good.message_id, good.body, {**good.headers, SIGNATURE: good.headers[SIGNATURE] + "A" * 5000})
    transport.publish(INGRESS, padded)
    decision = router.handle(transport.get(INGRESS))
    assert (decision.decision, decision.reason) == ("rejected", "too-large")
    assert _inbox(transport, "la-371") == [] and transport.depth(INGRESS) == 0


def test_the_route_command_exits_1_with_one_line_when_the_broker_cannot_be_reached(tmp_path):
    from click.testing import CliRunner

    from broker.cli import broker

    demo_network(tmp_path)
    result = CliRunner().invoke(broker, ["route", "--dir", str(tmp_path), "--once", "--give-up-after", "1",
                                         "--transport", "amqp://router:x@127.0.0.1:9/%2F"])
    assert result.exit_code == 1
    *attempts, reason = [line for line in result.output.splitlines()  # each reconnection attempt, then the reason
                         if not line.startswith("warning:")]  # (the directory's expiry warning aside)
    assert reason.startswith("Error: the router stopped: the router gave up after")
    assert all(line.startswith("lost the broker") for line in attempts) and "Traceback" not in result.output


def test_every_acknowledgement_the_router_sends_conforms_to_the_standard(net):
    from standard.validator import Validator

    network, transport, router = net
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    _send(network, transport, router, "la-886", message)  # accepted, one outcome per recipient
    _send(network, transport, router, "la-886", message)  # duplicate
    _send(network, transport, router, "la-886", scenario.placement("la-383", 1, LODGE, TODAY, sender="la-886"))
    router._queues.discard(delivery_queue("la-371"))
    router.transport.has_queue = lambda queue: queue != delivery_queue("la-371")  # la-371 without a queue
    _send(network, transport, router, "la-886", scenario.placement("la-886", 2, LODGE, TODAY))
    acks = _inbox(transport, "la-886")
    codes = [[i["details"]["coding"][0]["code"] for i in orjson.loads(a.body)["entry"][1]["resource"]["issue"]]
             for a in acks]
    assert codes == [["accepted", "accepted"], ["duplicate"], ["unauthorised-sender"], ["accepted", "delivery-failed"]]
    validator = Validator()
    for ack in acks:
        validator.validate(ack.body)  # raises MessageInvalid naming the finding


class _NoSecondChance(Router):
    """Broken twin: reports every ingress dead letter as failed, as the router did, without routing it alone."""

    def _account_for(self, delivery):
        self._failures.setdefault(delivery.envelope.message_id, "not retried")
        return super()._account_for(delivery)


@pytest.mark.parametrize("router_cls", [Router, _NoSecondChance], ids=["router", "twin-without-second-chance"])
def test_messages_dead_lettered_by_restarts_are_routed_alone_once(tmp_path, router_cls):
    network = demo_network(tmp_path)
    transport = network.transport()
    transport.delivery_limit = 1
    messages = [scenario.placement("la-886", n, LODGE, TODAY) for n in (1, 2, 3)]
    for message in messages:
        transport.publish(INGRESS, scenario.signed_envelope(network, "la-886", message))
    for _ in range(2):  # a router crashing on the batch twice: the broker dead-letters all of it
        held = [transport.get(INGRESS) for _ in messages]
        for d in held:
            d.reject(requeue=True)
    assert transport.depth("dead-letter") == 3
    router = router_cls.in_folder(network.root, network.directory, transport, network.keys["router"])
    router.run(idle_timeout=0)
    delivered = sorted(e.message_id for e in _inbox(transport, "la-371"))
    ids = sorted(m["identifier"]["value"] for m in messages)
    if router_cls is Router:
        assert delivered == ids and transport.depth("dead-letter") == 0
        assert [r["decision"] for r in router.audit.records()] == ["accepted"] * 3
    else:
        assert delivered != ids


def test_a_batch_is_split_by_bytes_so_one_publish_buffers_a_bounded_amount(net, monkeypatch):
    import broker.router as router_module

    network, transport, router = net
    sizes = []
    for n in range(1, 5):
        envelope = scenario.signed_envelope(network, "la-886", scenario.placement("la-886", n, LODGE, TODAY))
        transport.publish(INGRESS, envelope)
        sizes.append(len(envelope.body))
    monkeypatch.setattr(router_module, "MAX_BATCH_BYTES", sizes[0] + sizes[1])  # two messages a part
    published = []
    real = transport.publish_many
    monkeypatch.setattr(transport, "publish_many", lambda items: (published.append(len(items)), real(items)))
    router.run(idle_timeout=0, batch_size=4)
    assert published == [6, 6]  # two parts, each two deliveries to two recipients and two acknowledgements
    assert len(_inbox(transport, "la-371")) == 4


def test_what_was_routed_is_kept_for_the_response_window_then_forgotten(tmp_path):
    from broker.routed import RESPONSE_WINDOW_SECONDS

    network = demo_network(tmp_path)
    clock = [datetime.now(UTC)]
    router = Router.in_folder(network.root, network.directory, network.transport(), network.keys["router"],
                              now=lambda: clock[0])
    message = scenario.placement("la-886", 1, LODGE, TODAY)
    assert router.process(scenario.signed_envelope(network, "la-886", message)).decision == "accepted"
    message_id = message["identifier"]["value"]
    clock[0] += timedelta(seconds=RESPONSE_WINDOW_SECONDS - 86400)  # a decision months later still finds it
    router.prune_seen(force=True)
    assert router.routed.original(message_id) is not None
    clock[0] += timedelta(days=2)
    router.prune_seen(force=True)
    assert router.routed.original(message_id) is None  # a response now is refused like one about an unknown id
