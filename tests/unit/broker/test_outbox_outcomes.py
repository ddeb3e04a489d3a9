"""The sender knows: every message in an outbox ends with the exchange's answer (accepted with an outcome per
recipient, duplicate, refused with its reason, or failed), and a refused message can be sent again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from broker.router import Router
from sgx import demo as scenario
from sgx.demo import LODGE, demo_network

TODAY = datetime.now(UTC).date().isoformat()


class _SilentRefusals(Router):
    """Broken twin: refuses without telling the sender."""

    def _refuse(self, batch, decision, digest, *, notify, detail=None):
        return super()._refuse(batch, decision, digest, notify=False, detail=detail)


def _exchange(tmp_path, router_cls=Router):
    """la-886 sends a good placement and one about another authority's child (refused); the router routes them
    and la-886's node receives the answers. Returns (network, transport, outbox, good id, refused id)."""
    network = demo_network(tmp_path)
    transport = network.transport()
    outbox = network.outbox("la-886")
    good = outbox.add(scenario.placement("la-886", 1, LODGE, TODAY))
    refused = outbox.add(scenario.placement("la-383", 1, LODGE, TODAY, sender="la-886"))
    assert outbox.drain(transport) == 2
    router_cls.in_folder(network.root, network.directory, transport, network.keys["router"]).run(idle_timeout=0)
    node = network.node("la-886", transport)
    node.run(idle_timeout=0)
    outbox.record_acknowledgements(node)
    return network, transport, outbox, good, refused


@pytest.mark.parametrize("router_cls", [Router, _SilentRefusals], ids=["router", "twin-silent-refusals"])
def test_every_sent_message_ends_with_the_exchanges_answer(tmp_path, router_cls):
    _, _, outbox, good, refused = _exchange(tmp_path, router_cls)
    accepted = outbox.status(good)
    assert accepted.state == "accepted"
    assert accepted.outcomes == {"icb-QF7": ("delivered", "recipient icb-QF7: queued for delivery"),
                                 "la-371": ("delivered", "recipient la-371: queued for delivery")}
    states = [outbox.status(m).state for m in (good, refused)]
    if router_cls is Router:
        assert states == ["accepted", "refused"]
        assert outbox.status(refused).reason.startswith("unauthorised-sender")
    else:
        assert states != ["accepted", "refused"]  # the twin leaves its sender waiting for ever ("sent")


def test_a_refused_message_can_be_sent_again_and_an_accepted_one_cannot(tmp_path):
    network, transport, outbox, good, refused = _exchange(tmp_path)
    assert outbox.resend(good) is False
    assert outbox.resend(refused) is True
    assert outbox.pending() == 1 and outbox.status(refused).state == "queued"
    assert outbox.drain(transport) == 1  # signed afresh and sent
    assert outbox.status(refused).state == "sent"


def test_acknowledgements_are_applied_once_and_a_dead_letter_marks_its_recipient_failed(tmp_path):
    network, transport, outbox, good, _ = _exchange(tmp_path)
    node = network.node("la-886", transport)
    assert outbox.record_acknowledgements(node) == 0  # nothing new since the last call
    delivery = transport.get("deliver.la-371")
    delivery.reject(requeue=False)  # la-371's node refuses it
    network.router(transport).drain_dead_letters()
    node.run(idle_timeout=0)
    assert outbox.record_acknowledgements(node) == 1
    status = outbox.status(good)
    assert status.state == "accepted"
    assert status.outcomes["la-371"] == ("failed", "recipient la-371: dead-lettered (rejected)")
    assert status.outcomes["icb-QF7"][0] == "delivered"


def test_node_status_shows_the_state_and_each_recipients_outcome(tmp_path):
    from broker.cli import node

    _, _, _, good, refused = _exchange(tmp_path)
    runner = CliRunner()
    shown = runner.invoke(node, ["status", "--dir", str(tmp_path), "--participant", "la-886", good])
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if not line.startswith("warning:")]  # directory expiry
    assert lines[0].startswith(f"{good}  placement-started  accepted")
    recipients = [line.split()[:2] for line in lines[1:] if line.startswith("  ") and not line.startswith("    ")]
    assert recipients == [["icb-QF7", "accepted"], ["la-371", "accepted"]]  # queued for each; nobody read it yet
    shown = runner.invoke(node, ["status", "--dir", str(tmp_path), "--participant", "la-886", refused])
    assert "refused (unauthorised-sender" in shown.output and "sgx node resend" in shown.output
    missing = runner.invoke(node, ["status", "--dir", str(tmp_path), "--participant", "la-886", "urn:uuid:nope"])
    assert missing.exit_code == 1 and "is not in the outbox of la-886" in missing.output


def test_node_resend_sends_a_refused_message_again_and_names_one_that_is_not(tmp_path):
    from broker.cli import node

    _, transport, outbox, good, refused = _exchange(tmp_path)
    runner = CliRunner()
    again = runner.invoke(node, ["resend", "--dir", str(tmp_path), "--participant", "la-886", refused])
    assert again.exit_code == 0 and "sent 1; waiting in the outbox 0" in again.output
    assert transport.depth("ingress") == 1
    wrong = runner.invoke(node, ["resend", "--dir", str(tmp_path), "--participant", "la-886", good])
    assert wrong.exit_code == 1 and "not resent: it is not a refused or failed message of la-886" in wrong.output


def test_a_message_the_exchange_has_not_answered_can_be_queued_again_under_its_id_and_an_answered_one_cannot(
        tmp_path):
    network = demo_network(tmp_path)
    transport = network.transport()
    outbox = network.outbox("la-886")
    waiting = outbox.add(scenario.placement("la-886", 1, LODGE, TODAY))
    assert outbox.requeue_unanswered(waiting) is False  # not sent yet: nothing to send again
    assert outbox.drain(transport) == 1
    assert outbox.requeue_unanswered(waiting) is True  # sent, no answer: the same message goes again
    assert outbox.pending() == 1 and outbox.drain(transport) == 1
    _, _, answered, good, refused = _exchange(tmp_path / "answered")
    assert answered.requeue_unanswered(good) is False and answered.requeue_unanswered(refused) is False
