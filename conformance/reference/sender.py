"""The project's outbox as a sending system under test: it sends one scenario's message through
`broker.outbox.Outbox` (validate, queue, sign when sent, marked sent only once the broker confirms) and reads the
exchange's acknowledgements from its own queue with `broker.node.Node`.

    python -m conformance.reference.sender send SCENARIO CONFIG --key KEY

Exit 0 once the exchange accepted the message (or already had it), 1 when the exchange rejected it (the reason
on stderr), 2 when it could not be sent before the deadline. With no acknowledgement within the configuration's
`ack_timeout_seconds`, the same message (same id, same bytes) is sent again; a publish the broker refuses is
tried again the same way.

The messages are the project's own, built from the same facts as the scenarios (the examples of the standard),
each given an id of its own when it is first queued.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import uuid
from pathlib import Path

import orjson

from broker.directory import load
from broker.keys import SigningKey, read_public_key
from broker.node import Node
from broker.outbox import Outbox
from broker.transport import delivery_queue
from broker.transport.rabbitmq import RabbitTransport
from standard import artefacts
from standard.errors import SafeguardingExchangeError
from standard.validator import HOT_PATH, Validator

# The project's message for each scenario: the example built from that scenario's facts.
PRODUCED_FOR = {"SCN-PLC-01": "placement-started-childrens-home", "SCN-PLC-02": "placement-started-confidential",
                "SCN-PLC-03": "placement-ended-allegation", "SCN-INC-01": "serious-incident-police",
                "SCN-ALG-01": "allegation-referral-physical",
                "SCN-CON-01": "concern-notification-whistleblowing",
                "SCN-DEC-01": "decision-recorded-strategy-meeting",
                "SCN-INF-01": "information-request-staff-deployment"}
ACCEPTED, REJECTED, UNSENT = 0, 1, 2


class ReferenceSender:
    outbox_validator = None  # the outbox's own (full validation) unless a subclass says otherwise

    def __init__(self, config: dict, key: SigningKey):
        self.config, self.participant, self.key = config, config["participant"], key
        state = Path(config["state"])
        operator, _ = read_public_key(Path(config["directory_operator_key"]).read_bytes(),
                                      config["directory_operator_key"])
        # The exchange's answers arrive on delivery_queue(participant), whose private name the configuration gives.
        self.transport = RabbitTransport(config["amqp_url"], publish_attempts=2, retry_delay=0.5,
                                         queue_names={delivery_queue(self.participant): config["queue"]})
        self.outbox = Outbox(state / "outbox.db", self.participant, key,
                             validator=self.outbox_validator or Validator(HOT_PATH))
        self.node = Node(self.participant, load(Path(config["directory"]), operator), self.transport,
                         state / "acknowledgements.db")
        self.ack_timeout = float(config.get("ack_timeout_seconds", 5))
        self.deadline = time.monotonic() + float(config.get("send_deadline_seconds", 60))

    def message_for(self, scenario: dict) -> dict:
        message = orjson.loads((artefacts.EXAMPLES / f"{PRODUCED_FOR[scenario['id']]}.json").read_bytes())
        message["identifier"]["value"] = f"urn:uuid:{uuid.uuid4()}"
        return message

    def send(self, scenario: dict) -> int:
        return self.until_answered(self.outbox.add(self.message_for(scenario)))

    def until_answered(self, message_id: str, sent_at: float | None = None) -> int:
        """Send what waits, read the exchange's answers, and send again when none comes, until the deadline."""
        while time.monotonic() < self.deadline:
            if self.outbox.pending():
                if self.outbox.drain(self.transport):
                    sent_at = time.monotonic()
                else:
                    time.sleep(0.2)  # the broker refused or is away: the message waits in the outbox
                    continue
            self.node.run(idle_timeout=0.1)
            self.outbox.record_acknowledgements(self.node)
            verdict = self.on_status(message_id, sent_at)
            if verdict is not None:
                return verdict
        sys.stderr.write(f"{message_id}: not accepted before the deadline; it stays in the outbox\n")
        return UNSENT

    def on_status(self, message_id: str, sent_at: float | None) -> int | None:
        """What to do now: an exit code, or None to keep waiting (sending again after no answer)."""
        status = self.outbox.status(message_id)
        if status.state in ("accepted", "duplicate"):
            return ACCEPTED
        if status.state == "refused":
            sys.stderr.write(f"{message_id}: the exchange rejected it: {status.reason}\n")
            return REJECTED
        if sent_at is not None and time.monotonic() - sent_at > self.ack_timeout:
            self.outbox.requeue_unanswered(message_id)  # no answer: the same message again, same id
        return None


def main(argv: list[str] | None = None, sender_class: type[ReferenceSender] = ReferenceSender) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.reference.sender")
    sub = parser.add_subparsers(dest="command", required=True)
    sending = sub.add_parser("send", help="send one scenario's message and wait for the exchange's answer")
    sending.add_argument("scenario", type=Path)
    sending.add_argument("config", type=Path)
    sending.add_argument("--key", type=Path, required=True, help="the participant's private signing key")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(UNSENT))
    try:
        config = orjson.loads(args.config.read_bytes())
        scenario = orjson.loads(args.scenario.read_bytes())
        sender = sender_class(config, SigningKey.load(args.key, config.get("kid")))
        return sender.send(scenario)
    except (OSError, orjson.JSONDecodeError, KeyError, SafeguardingExchangeError) as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return UNSENT


if __name__ == "__main__":
    sys.exit(main())
