"""The sender is accountable for every message it sent: per recipient, accepted by the exchange, read, acknowledged
and decided, with times, from the responses the exchange routes back; overdue when nobody acknowledged it by the
deadline the catalogue sets for its event."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from sgx import demo as scenario
from sgx.demo import PROVIDER, demo_network
from standard import catalogue as cat
from standard import compose as c


def _round(network, transport) -> None:
    """The router routes what waits, then every node takes what is waiting for it."""
    network.router(transport).run(idle_timeout=0)


def _exchange(tmp_path):
    """The provider sends a serious incident (to Ofsted, Kent and Doncaster); Doncaster reads, acknowledges and
    records a decision; the provider's node receives the responses. Returns (network, outbox, message id)."""
    network = demo_network(tmp_path)
    transport = network.transport()
    outbox = network.outbox(PROVIDER)
    sent = outbox.add(scenario.serious_incident("la-886", 1))
    outbox.drain(transport)
    _round(network, transport)
    doncaster = network.outbox("la-371")
    for response in (c.acknowledgement(sent, "la-371", "read"), c.acknowledgement(sent, "la-371", "received"),
                     c.decision_recorded(sent, "la-371", "visit-arranged", text="Visit on Monday.")):
        doncaster.add(response)
    doncaster.drain(transport)
    _round(network, transport)
    node = network.node(PROVIDER, transport)
    node.run(idle_timeout=0)
    outbox.record_acknowledgements(node)
    assert outbox.record_responses(node) == 3
    return network, outbox, sent


def test_each_recipient_shows_how_far_it_got_with_times(tmp_path):
    _, outbox, sent = _exchange(tmp_path)
    states = {s.recipient: s for s in outbox.accountable(sent)}
    assert set(states) == {"la-371", "la-886", "ofsted"}
    doncaster = states["la-371"]
    assert doncaster.latest == "decided" and doncaster.accepted_at
    assert set(doncaster.steps) == {"delivered", "read", "acknowledged", "decided"}
    assert doncaster.steps["decided"][1] == "Visit to the setting arranged: Visit on Monday."
    assert [states[p].latest for p in ("la-886", "ofsted")] == ["accepted", "accepted"]


def test_not_acknowledged_by_the_events_deadline_is_overdue(tmp_path):
    _, outbox, sent = _exchange(tmp_path)
    assert cat.get_event("serious-incident").acknowledge_working_days == 1
    due = {s.recipient: s.due for s in outbox.accountable(sent)}
    assert len(set(due.values())) == 1  # accepted for every recipient in one batch
    deadline = due["la-886"]
    soon = {s.recipient: s.overdue for s in outbox.accountable(sent, deadline - timedelta(minutes=1))}
    assert soon == {"la-371": False, "la-886": False, "ofsted": False}
    late = {s.recipient: s.overdue for s in outbox.accountable(sent, deadline + timedelta(minutes=1))}
    assert late == {"la-371": False, "la-886": True, "ofsted": True}  # Doncaster acknowledged in time


@pytest.mark.parametrize(("delivered", "due"), [
    ("2026-11-26T10:00:00+00:00", "2026-11-28T00:00:00+00:00"),  # Thursday: by the end of Friday
    ("2026-11-27T16:00:00+00:00", "2026-12-01T00:00:00+00:00"),  # Friday: by the end of Monday
    ("2026-11-28T09:00:00+00:00", "2026-12-01T00:00:00+00:00"),  # Saturday: Monday too
    ("2026-12-24T09:00:00+00:00", "2026-12-30T00:00:00+00:00"),  # Christmas Eve: Christmas, Boxing Day (Monday 28)
    ("2027-03-25T09:00:00+00:00", "2027-03-31T00:00:00+00:00"),  # Thursday before Good Friday and Easter Monday
])
def test_a_deadline_in_working_days_skips_weekends_and_englands_bank_holidays(delivered, due):
    event = cat.get_event("serious-incident")
    assert event.acknowledge_by(datetime.fromisoformat(delivered)) == datetime.fromisoformat(due)


def test_broken_twin_calendar_days_would_flag_a_friday_message_overdue_over_the_weekend():
    friday = datetime.fromisoformat("2026-11-27T16:00:00+00:00")
    calendar_due = friday + timedelta(days=1)
    sunday = datetime.fromisoformat("2026-11-29T12:00:00+00:00")
    assert sunday > calendar_due  # overdue on Sunday by calendar days, which no working week allows
    assert sunday < cat.get_event("serious-incident").acknowledge_by(friday)


def test_a_deadline_beyond_the_shipped_bank_holidays_still_skips_weekends():
    friday = datetime.fromisoformat("2031-01-03T09:00:00+00:00")
    assert cat.get_event("serious-incident").acknowledge_by(friday) == datetime.fromisoformat(
        "2031-01-07T00:00:00+00:00")


def test_a_response_to_a_message_this_outbox_never_sent_changes_nothing(tmp_path):
    _, outbox, sent = _exchange(tmp_path)
    other = c.acknowledgement("urn:uuid:00000000-0000-4000-8000-00000000beef", "la-886", "received")
    assert outbox.record_response("la-886", "acknowledgement", other) is None
    assert {s.recipient: s.latest for s in outbox.accountable(sent)}["la-886"] == "accepted"


def test_node_status_shows_acknowledged_and_decided_per_recipient(tmp_path):
    from broker.cli import node

    _, _, sent = _exchange(tmp_path)
    shown = CliRunner().invoke(node, ["status", "--dir", str(tmp_path), "--participant", PROVIDER, sent])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    doncaster = lines.index(next(line for line in lines if line.strip().startswith("la-371")))
    assert lines[doncaster].split()[:2] == ["la-371", "decided"]
    steps = [line.split()[0] for line in lines[doncaster + 1:doncaster + 6]]
    assert steps == ["accepted", "delivered", "read", "acknowledged", "decided"]
    assert "Visit to the setting arranged: Visit on Monday." in shown.output


def _node_run(root, pid, *flags):
    from broker.cli import node

    done = CliRunner().invoke(node, ["run", "--dir", str(root), "--participant", pid, "--once", *flags])
    assert done.exit_code == 0, done.output
    return done.output


def _delivered_to_node(tmp_path, *flags) -> dict[str, str]:
    """The provider's incident routed; Doncaster's node (run through `sgx node run`) stores it; the provider's
    view of each recipient afterwards."""
    network = demo_network(tmp_path)
    transport = network.transport()
    outbox = network.outbox(PROVIDER)
    sent = outbox.add(scenario.serious_incident("la-886", 1))
    outbox.drain(transport)
    _round(network, transport)
    _node_run(tmp_path, "la-371", *flags)
    _round(network, transport)
    node = network.node(PROVIDER, transport)
    node.run(idle_timeout=0)
    outbox.record_acknowledgements(node)
    outbox.record_responses(node)
    return {s.recipient: s.latest for s in outbox.accountable(sent)}


def test_a_node_tells_the_sender_its_message_reached_it(tmp_path):
    assert _delivered_to_node(tmp_path) == {"la-371": "delivered", "la-886": "accepted", "ofsted": "accepted"}
    receipts = "SELECT count(*) FROM outbox WHERE event = 'acknowledgement'"
    doncaster = sqlite3.connect(tmp_path / "outbox" / "la-371.db")
    assert doncaster.execute(receipts).fetchone()[0] == 1
    _node_run(tmp_path, "la-371")  # nothing new arrived: no second receipt
    assert doncaster.execute(receipts).fetchone()[0] == 1


def test_without_receipts_the_sender_only_knows_the_message_was_queued(tmp_path):
    # The twin of the test above: the same run with receipts turned off leaves the sender at "accepted".
    assert _delivered_to_node(tmp_path, "--no-receipts")["la-371"] == "accepted"


def test_a_decision_without_an_acknowledgement_answers_the_message_too(tmp_path):
    _, outbox, sent = _exchange(tmp_path)
    outbox.record_response("la-886", "decision-recorded", c.decision_recorded(sent, "la-886", "monitoring"))
    deadline = next(s.due for s in outbox.accountable(sent) if s.recipient == "la-886")
    late = {s.recipient: (s.latest, s.overdue) for s in outbox.accountable(sent, deadline + timedelta(minutes=1))}
    assert late["la-886"] == ("decided", False)  # the recipient's inbox shows it decided, not overdue: so does this
    assert late["ofsted"] == ("accepted", True)
