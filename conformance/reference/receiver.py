"""The project's node as a receiving system under test: it takes its queue with `broker.node.Node` (verify the
sender's signature and the router's delivery note, store each message id once, only then ack the delivery), and
then answers each newly stored message with a signed business acknowledgement: `received` when the message
passes the standard's validator, `rejected` with the findings as the reason when it does not (an event or an
event version the system does not know).

    python -m conformance.reference.receiver run CONFIG --key KEY     # until SIGTERM
    python -m conformance.reference.receiver stored CONFIG            # the message ids it holds, as JSON

An acknowledgement is published before it is recorded as sent: a crash between the two sends it again on the next
start, never loses it.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
from pathlib import Path

import orjson

from broker import signing
from broker.db import transaction
from broker.directory import load
from broker.keys import SigningKey, read_public_key
from broker.node import Node
from broker.router import SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, delivery_queue
from broker.transport.rabbitmq import RabbitTransport
from standard import compose
from standard.errors import SafeguardingExchangeError
from standard.validator import HOT_PATH, Validator
from standard.validator.findings import ERROR

INBOX = "inbox.db"
_ACKED = "CREATE TABLE IF NOT EXISTS acknowledged (message_id TEXT PRIMARY KEY, code TEXT NOT NULL)"


class ReferenceReceiver:
    """One participant's receiving system; `run` until `stop()` says so."""

    node_class = Node
    per_run = 100  # deliveries taken before the newly stored ones are answered

    def __init__(self, config: dict, key: SigningKey):
        self.config, self.participant = config, config["participant"]
        self.key = key
        operator, _ = read_public_key(Path(config["directory_operator_key"]).read_bytes(),
                                      config["directory_operator_key"])
        directory = load(Path(config["directory"]), operator)
        # The node reads delivery_queue(participant); on the broker that queue has the private name configured.
        self.transport = RabbitTransport(config["amqp_url"],
                                         queue_names={delivery_queue(self.participant): config["queue"]})
        self.node = self.node_class(self.participant, directory, self.transport,
                                    Path(config["state"]) / INBOX)
        self.node.db.execute(_ACKED)
        self.validator = Validator(HOT_PATH)

    def run(self, stop) -> None:
        self.acknowledge_new()  # what a crash left stored but unanswered
        while not stop():
            self.node.run(idle_timeout=0.2, max_messages=self.per_run, batch_size=self.per_run)
            self.acknowledge_new()

    def unanswered(self) -> list[tuple[str, bytes]]:
        return self.node.db.execute(
            "SELECT message_id, body FROM inbox WHERE sender != 'router' AND message_id NOT IN "
            "(SELECT message_id FROM acknowledged) ORDER BY rowid").fetchall()

    def judge(self, body: bytes) -> tuple[str, str | None]:
        """The business answer to a stored message: received, or rejected with the reason."""
        errors = [f for f in self.validator.iter_findings(body) if f.severity == ERROR]
        if errors:
            return "rejected", "; ".join(f"{f.code} at {f.location}" for f in errors[:5])
        return "received", None

    def acknowledgement(self, message_id: str, code: str, reason: str | None) -> dict:
        details = [("error", "invalid", code, reason)] if reason else []
        return compose.acknowledgement(message_id, self.participant, code, details=details)

    def publish(self, ack: dict) -> None:
        body = orjson.dumps(ack)
        ack_id = ack["identifier"]["value"]
        signature = signing.sign_message(body, self.key, sender=self.participant, message_id=ack_id,
                                         event="acknowledgement")
        self.transport.publish(INGRESS, Envelope(ack_id, body, {SIGNATURE: signature, SENDER: self.participant}))

    def acknowledge_new(self) -> None:
        for message_id, body in self.unanswered():
            code, reason = self.judge(body)
            self.publish(self.acknowledgement(message_id, code, reason))
            with transaction(self.node.db):
                self.node.db.execute("INSERT OR IGNORE INTO acknowledged (message_id, code) VALUES (?, ?)",
                                     (message_id, code))


def stored(config: dict) -> list[str]:
    """The ids of the messages the receiver holds (applied), one entry per time applied."""
    path = Path(config["state"]) / INBOX
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT message_id FROM inbox WHERE sender != 'router' ORDER BY rowid")]
    finally:
        db.close()


def main(argv: list[str] | None = None, receiver_class: type[ReferenceReceiver] = ReferenceReceiver,
         stored_of=stored) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.reference.receiver")
    sub = parser.add_subparsers(dest="command", required=True)
    running = sub.add_parser("run", help="receive until SIGTERM")
    running.add_argument("config", type=Path)
    running.add_argument("--key", type=Path, required=True, help="the participant's private signing key")
    listing = sub.add_parser("stored", help="print the ids of the messages held, as a JSON array")
    listing.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    try:
        config = orjson.loads(args.config.read_bytes())
        if args.command == "stored":
            sys.stdout.write(orjson.dumps(stored_of(config)).decode() + "\n")
            return 0
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        receiver = receiver_class(config, SigningKey.load(args.key, config.get("kid")))
        receiver.run(lambda: bool(stopping))
        return 0
    except (OSError, orjson.JSONDecodeError, KeyError, SafeguardingExchangeError) as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
