"""`sgx oversight run` at the host authority's node: escalations from what its nodes received, sent as signed
messages through the exchange to everyone responsible, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from broker.oversight.node import run_pass
from broker.oversight.rules import published
from sgx.cli import cli
from standard import compose as c
from standard.errors import OversightError

LODGE, PROVIDER = "SC900001", "provider-example-care"
NOW = datetime.now(UTC)


def _placement(la: str, n: int) -> dict:
    b = c.MessageBuilder("placement-started", la)
    child = b.add(c.child(f"{la[3:]}-{n:04d}", la[3:], "2011-04-02", "female"))
    episode = b.add(c.looked_after_episode(child, la, "C2", "2025-06-01"))
    setting = b.add(c.setting(LODGE, "Example Lodge"))
    b.add(c.placement(child, episode, setting, "K2", (NOW - timedelta(days=100)).date().isoformat()), focus=True)
    return b.build()


def _referral(n: int) -> dict:
    b = c.MessageBuilder("allegation-referral", PROVIDER, security=["allegation-detail"])
    setting = b.add(c.setting(LODGE, "Example Lodge"))
    role = b.add(c.staff_role(f"S-{n:04d}", PROVIDER, setting))
    b.add(c.allegation_referral(f"LADO-371-{n:04d}", role, setting, "lado-371", PROVIDER,
                                c.timestamp(NOW - timedelta(days=60 - 7 * n)), "physical-abuse"), focus=True)
    return b.build()


@pytest.fixture
def network(tmp_path):
    participants = [d.Participant(PROVIDER, d.PROVIDER, "Example Care Ltd")]
    settings = [d.Setting(LODGE, "Example Lodge", "childrens-home", "la-371", "icb-QF7", ["ofsted"], PROVIDER)]
    keyed = [PROVIDER, "router", "la-371", "lado-371", "icb-QF7", "ofsted", "la-886", "la-383"]
    net = ExchangeFolder.create(tmp_path / "ex", participants, settings, keyed=keyed)
    transport = net.transport()
    sends = [("la-886", _placement("la-886", 1)), ("la-886", _placement("la-886", 2)),
             ("la-383", _placement("la-383", 3))] + [(PROVIDER, _referral(n)) for n in range(8)]
    for sender, message in sends:
        outbox = net.outbox(sender)
        outbox.add(message)
        outbox.drain(transport)
    net.router(transport).run(idle_timeout=0.0, max_messages=len(sends))
    for pid in ("la-371", "lado-371"):
        net.node(pid, transport).run(idle_timeout=0.0)
    yield net, transport, [m["identifier"]["value"] for s, m in sends if s == PROVIDER]
    transport.close()


def _escalations(net, transport, pid):
    node = net.node(pid, transport)
    node.run(idle_timeout=0.0)
    return [i for i in node.inbox() if i.event == "escalation"]


def test_an_escalation_reaches_everyone_responsible_naming_rule_window_and_signals(network):
    net, transport, referrals = network
    outbox = net.outbox("la-371")
    result = run_pass(net.root, net.directory, "la-371", published(), outbox)
    assert [e.rule for _, e in result.escalations] == ["OVR-ALLEGATIONS"]
    assert outbox.drain(transport) == 1
    net.router(transport).run(idle_timeout=0.0, max_messages=1)
    for pid, own_children in (("icb-QF7", None), ("ofsted", None), ("la-886", 2), ("la-383", 1)):
        (item,) = _escalations(net, transport, pid)
        assert item.sender == "la-371" and item.verified
        task = orjson.loads(item.body)["entry"][2]["resource"]
        inputs = {i["type"]["coding"][0]["code"]: i for i in task["input"]}
        assert inputs["oversight-rule"]["valueCoding"]["code"] == "OVR-ALLEGATIONS"
        assert inputs["oversight-rule"]["valueCoding"]["version"] == published().version
        assert set(inputs["window"]["valuePeriod"]) == {"start", "end"}
        named = [i["valueIdentifier"]["value"] for i in task["input"] if i["type"]["coding"][0]["code"] == "signal"]
        assert sorted(named) == sorted(referrals[:6])  # it fires on the sixth allegation (3 children: at least 6)
        if own_children is not None:  # each placing authority is told only of its own children at the setting
            assert len(item.delivery.get("children", [])) == own_children


def _passes_queue(net, state_kept: bool = True) -> int:
    """Run two passes; return how many escalation messages wait in the outbox."""
    outbox = net.outbox("la-371")
    run_pass(net.root, net.directory, "la-371", published(), outbox)
    if not state_kept:
        (net.root / "oversight" / "la-371.db").unlink()
    run_pass(net.root, net.directory, "la-371", published(), outbox, now=NOW + timedelta(minutes=5))
    return outbox.pending()


def test_a_second_pass_sends_nothing_new_even_if_its_record_is_lost(network):
    net, _, _ = network
    assert _passes_queue(net) == 1
    assert _passes_queue(net, state_kept=False) == 1  # the message id comes from setting, rule and window


def test_a_twin_whose_escalation_ids_are_random_would_send_twice(network, monkeypatch):
    import uuid

    import broker.oversight.node as oversight_node

    net, _, _ = network
    monkeypatch.setattr(oversight_node.uuid, "uuid5", lambda *_: uuid.uuid4())
    assert _passes_queue(net, state_kept=False) == 2


def test_a_referral_not_passed_on_by_the_lado_is_alerted_to_everyone_responsible(network):
    net, transport, referrals = network
    outbox = net.outbox("la-371")
    started = NOW - timedelta(days=30)  # oversight began a month ago: referrals 0-4 came before, 5-7 after
    run_pass(net.root, net.directory, "la-371", published(), outbox, now=started)
    second = run_pass(net.root, net.directory, "la-371", published(), outbox)
    cases = {a.detail.split("case LADO-371-")[1][:4] for a in second.alerts if a.clock == "CLK-LADO"}
    # 5-7 came after the start; 4 came two days before it, but fell due after it.
    assert {"0005", "0006", "0007"} <= cases <= {"0004", "0005", "0006", "0007"}
    outbox.drain(transport)
    net.router(transport).run(idle_timeout=0.0, max_messages=10)
    for pid in ("icb-QF7", "ofsted", "la-886", "la-383"):
        alerts = [orjson.loads(i.body)["entry"][2]["resource"] for i in _escalations(net, transport, pid)]
        clocks = [t for t in alerts if t["reasonCode"]["coding"][0]["code"] == "statutory-clock"]
        assert sorted(t["input"][0]["valueCoding"]["code"] for t in clocks) == ["CLK-LADO"] * len(cases), pid


def test_oversight_refuses_a_participant_that_is_not_a_local_authority(network):
    net, _, _ = network
    with pytest.raises(OversightError, match="not a local authority"):
        run_pass(net.root, net.directory, "icb-QF7", published(), net.outbox("icb-QF7"))


def test_sgx_oversight_run_once_sends_the_escalation(network):
    net, transport, _ = network
    result = CliRunner().invoke(cli, ["oversight", "run", "--dir", str(net.root), "--participant", "la-371", "--once"])
    assert result.exit_code == 0, result.output
    assert "escalation SC900001 OVR-ALLEGATIONS" in result.output
    assert "1 new escalation(s) and 0 new alert(s) sent (1 confirmed" in result.output
    again = CliRunner().invoke(cli, ["oversight", "run", "--dir", str(net.root), "--participant", "la-371",
                                     "--once"])
    assert "0 new escalation(s) and 0 new alert(s)" in again.output


def test_the_inbox_shows_an_escalations_rule_window_and_signals(network):
    from broker.inbox.facts import case_note

    net, transport, referrals = network
    outbox = net.outbox("la-371")
    run_pass(net.root, net.directory, "la-371", published(), outbox)
    outbox.drain(transport)
    net.router(transport).run(idle_timeout=0.0, max_messages=1)
    (item,) = _escalations(net, transport, "la-886")
    what = dict(case_note(orjson.loads(item.body)).what)
    assert what["Oversight rule"].startswith("OVR-ALLEGATIONS Allegations against staff") and "(rules 1." in \
        what["Oversight rule"]
    assert " to " in what["Window"] and what["Reason"] == "Repeated incidents"  # as OVR-ALLEGATIONS says
    assert set(what["Signals (6)"].split(", ")) == set(referrals[:6])

