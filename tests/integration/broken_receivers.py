"""Deliberately broken receiving systems for the receiver kit's self-tests: the project's reference receiver with
one fault each. Run as the reference is, with `--fault NAME`:

    python -m tests.integration.broken_receivers run CONFIG --key KEY --fault skip-verification
    python -m tests.integration.broken_receivers stored CONFIG --fault skip-verification
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import orjson

from broker import signing
from broker.db import transaction
from broker.keys import SigningKey
from broker.node import Node
from broker.router import SIGNATURE
from broker.transport import INGRESS, Envelope
from conformance.reference import receiver as reference
from conformance.reference.receiver import ReferenceReceiver


class _Unverified(Node):
    def verify(self, delivery):
        header = signing.read_header(delivery.envelope.headers.get(SIGNATURE, ""))
        return signing.SignedHeader(header["kid"], header["iss"], header["jti"], header["sgx-evt"], header["iat"]), {}


class SkipsVerification(ReferenceReceiver):
    """Stores whatever arrives, signed or not."""

    node_class = _Unverified


class _Hooked(Node):
    """A node that tells its receiver about each verified delivery before storing the batch."""

    receiver: _HookedReceiver

    def receive_many(self, deliveries):
        for delivery in deliveries:
            try:
                signed, _ = self.verify(delivery)
            except Exception:  # noqa: BLE001, S112 - refused deliveries are the node's business, below
                continue
            self.receiver.on_verified(signed.message_id, delivery.envelope.body)
        self.receiver.before_store()
        return super().receive_many(deliveries)


class _HookedReceiver(ReferenceReceiver):
    node_class = _Hooked

    def __init__(self, config, key):
        super().__init__(config, key)
        self.node.receiver = self
        self.seen: set[str] = set()

    def on_verified(self, message_id, body):
        pass

    def before_store(self):
        pass


class AcknowledgesBeforeStoring(_HookedReceiver):
    """Answers each message as soon as it has verified it, and stores it a moment later."""

    def on_verified(self, message_id, body):
        if self.node.db.execute("SELECT 1 FROM acknowledged WHERE message_id = ?", (message_id,)).fetchone():
            return
        code, reason = self.judge(body)
        self.publish(self.acknowledgement(message_id, code, reason))
        with transaction(self.node.db):
            self.node.db.execute("INSERT OR IGNORE INTO acknowledged (message_id, code) VALUES (?, ?)",
                                 (message_id, code))

    def before_store(self):
        time.sleep(1.5)  # the store comes later: a crash now loses an acknowledged message


class AppliesDuplicatesTwice(_HookedReceiver):
    """Applies (and answers) every delivery it verifies, without asking whether it already holds the id."""

    def __init__(self, config, key):
        super().__init__(config, key)
        self.node.db.execute("CREATE TABLE IF NOT EXISTS applied (message_id TEXT NOT NULL)")

    def on_verified(self, message_id, body):
        with transaction(self.node.db):
            self.node.db.execute("INSERT INTO applied (message_id) VALUES (?)", (message_id,))
        code, reason = self.judge(body)
        self.publish(self.acknowledgement(message_id, code, reason))

    def acknowledge_new(self):
        pass


def _applied(config):
    db = sqlite3.connect(Path(config["state"]) / reference.INBOX)
    try:
        return [row[0] for row in db.execute("SELECT message_id FROM applied ORDER BY rowid")]
    finally:
        db.close()


class NeverAcknowledges(ReferenceReceiver):
    """Stores, never answers."""

    def acknowledge_new(self):
        pass


class WrongKid(ReferenceReceiver):
    """Signs its acknowledgements naming a key the directory does not have."""

    def __init__(self, config, key):
        super().__init__(config, SigningKey("not-the-registered-kid", key.private))


class InvalidAcknowledgement(ReferenceReceiver):
    """Sends acknowledgements without the Bundle's timestamp."""

    def acknowledgement(self, message_id, code, reason):
        ack = super().acknowledgement(message_id, code, reason)
        del ack["timestamp"]
        return ack


class AcceptsAnything(ReferenceReceiver):
    """Never checks a message against the standard: an unknown event version is 'received'."""

    def judge(self, body):
        return "received", None


class RefusesOutOfOrder(ReferenceReceiver):
    """Rejects a placement's end when it does not yet hold the placement's start for that child."""

    def judge(self, body):
        message = orjson.loads(body)
        if message["entry"][0]["resource"]["eventCoding"]["code"] != "placement-ended":
            return super().judge(body)
        child = _local_child_id(message)
        row = self.node.db.execute("SELECT rowid FROM inbox WHERE message_id = ?",
                                   (message["identifier"]["value"],)).fetchone()
        earlier = self.node.db.execute("SELECT body FROM inbox WHERE event = 'placement-started' AND rowid < ?",
                                       (row[0],)).fetchall()
        if not any(_local_child_id(orjson.loads(b)) == child for (b,) in earlier):
            return "rejected", "no placement started for this child"
        return super().judge(body)


def _local_child_id(message):
    for entry in message["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            return next(i["value"] for i in entry["resource"]["identifier"] if i["system"].endswith("local-child-id"))
    return None


class CrashesOnDuplicate(_HookedReceiver):
    """Dies when a message it already holds (and has answered) arrives again. It takes one delivery at a time, so
    that what it held before the duplicate is answered first, whatever the batches would have been."""

    per_run = 1

    def on_verified(self, message_id, body):
        if message_id in self.seen:
            sys.stderr.write("fatal: a message id arrived twice\n")
            os._exit(3)
        self.seen.add(message_id)


class FloodsTheIngress(ReferenceReceiver):
    """Once it has answered ten messages, publishes 600 messages that are not acknowledgements."""

    per_run = 1

    def acknowledge_new(self):
        super().acknowledge_new()
        answered = self.node.db.execute("SELECT COUNT(*) FROM acknowledged").fetchone()[0]
        if answered >= 10 and not getattr(self, "flooded", False):
            self.flooded = True
            junk = [(INGRESS, Envelope(f"junk-{i}", b'{"resourceType":"Bundle"}', {})) for i in range(600)]
            for start in range(0, len(junk), 100):
                self.transport.publish_many(junk[start:start + 100])


FAULTS = {"skip-verification": SkipsVerification, "acknowledge-before-storing": AcknowledgesBeforeStoring,
          "apply-duplicates-twice": AppliesDuplicatesTwice, "never-acknowledge": NeverAcknowledges,
          "wrong-kid": WrongKid, "invalid-acknowledgement": InvalidAcknowledgement,
          "accept-anything": AcceptsAnything, "refuse-out-of-order": RefusesOutOfOrder,
          "crash-on-duplicate": CrashesOnDuplicate, "flood-the-ingress": FloodsTheIngress}


if __name__ == "__main__":
    args = sys.argv[1:]
    fault = args[args.index("--fault") + 1]
    del args[args.index("--fault"):args.index("--fault") + 2]
    stored_of = _applied if fault == "apply-duplicates-twice" else reference.stored
    sys.exit(reference.main(args, FAULTS[fault], stored_of))
