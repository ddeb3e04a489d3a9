"""Deliberately broken sending systems for the sender kit's self-tests: the project's reference sender with one
fault each.

    python -m tests.integration.broken_senders send SCENARIO CONFIG --key KEY --fault new-id-on-resend
"""

from __future__ import annotations

import sys
import time
import uuid

import orjson

from broker.db import transaction
from broker.keys import SigningKey
from conformance.reference import sender as reference
from conformance.reference.sender import ACCEPTED, REJECTED, ReferenceSender


class NewIdOnResend(ReferenceSender):
    """Sends the message again under a new id when the exchange does not answer."""

    def send(self, scenario):
        self.current = None
        return super().send(scenario)

    def on_status(self, message_id, sent_at):
        current = self.current or message_id
        status = self.outbox.status(current)
        if status.state in ("accepted", "duplicate"):
            return ACCEPTED
        if status.state == "refused":
            return REJECTED
        if sent_at is not None and time.monotonic() - sent_at > self.ack_timeout and self.current is None:
            message = orjson.loads(self.outbox.db.execute("SELECT body FROM outbox WHERE message_id = ?",
                                                          (message_id,)).fetchone()[0])
            message["identifier"]["value"] = f"urn:uuid:{uuid.uuid4()}"
            self.current = self.outbox.add(message)
        return None


class ChangesContentOnResend(ReferenceSender):
    """Sends something else under the same id when the exchange does not answer."""

    def on_status(self, message_id, sent_at):
        status = self.outbox.status(message_id)
        if status.state == "sent" and sent_at is not None and time.monotonic() - sent_at > self.ack_timeout:
            body = self.outbox.db.execute("SELECT body FROM outbox WHERE message_id = ?", (message_id,)).fetchone()[0]
            changed = body.replace(b'"gender":"male"', b'"gender":"female"') if b'"gender":"male"' in body \
                else body.replace(b'"gender":"female"', b'"gender":"male"')
            assert changed != body, "the twin must change the content"
            with transaction(self.outbox.db):
                self.outbox.db.execute("UPDATE outbox SET body = ? WHERE message_id = ?", (changed, message_id))
        return super().on_status(message_id, sent_at)


class WrongKid(ReferenceSender):
    """Signs naming a key the directory does not have."""

    def __init__(self, config, key):
        super().__init__(config, SigningKey("not-the-registered-kid", key.private))


class _AnythingGoes:
    def validate(self, body, **_options):
        return orjson.loads(body)


class InvalidMessage(ReferenceSender):
    """Sends messages without the Bundle's timestamp (and does not validate them first)."""

    outbox_validator = _AnythingGoes()

    def message_for(self, scenario):
        message = super().message_for(scenario)
        del message["timestamp"]
        return message


class IgnoresRejection(ReferenceSender):
    """Takes a rejection for no answer: sends the message again, then gives up."""

    def on_status(self, message_id, sent_at):
        status = self.outbox.status(message_id)
        if status.state == "refused":
            self.outbox.resend(message_id)
            self.outbox.drain(self.transport)
            time.sleep(0.3)
            return REJECTED
        return super().on_status(message_id, sent_at)


class ResendsAfterAcceptance(ReferenceSender):
    """Sends an accepted message once more before it stops."""

    def on_status(self, message_id, sent_at):
        verdict = super().on_status(message_id, sent_at)
        if verdict == ACCEPTED:
            with transaction(self.outbox.db):
                self.outbox.db.execute("UPDATE outbox SET sent_at = NULL WHERE message_id = ?", (message_id,))
            self.outbox.drain(self.transport)
            time.sleep(0.3)
        return verdict


class GivesUpOnRefusedPublish(ReferenceSender):
    """Reports success when the broker refused the publish, and never sends it."""

    def send(self, scenario):
        message_id = self.outbox.add(self.message_for(scenario))
        return ACCEPTED if self.outbox.drain(self.transport) == 0 else self.until_answered(message_id,
                                                                                            time.monotonic())


FAULTS = {"new-id-on-resend": NewIdOnResend, "changes-content-on-resend": ChangesContentOnResend,
          "wrong-kid": WrongKid, "invalid-message": InvalidMessage, "ignores-rejection": IgnoresRejection,
          "resends-after-acceptance": ResendsAfterAcceptance, "gives-up-on-refused-publish": GivesUpOnRefusedPublish}


if __name__ == "__main__":
    args = sys.argv[1:]
    fault = args[args.index("--fault") + 1]
    del args[args.index("--fault"):args.index("--fault") + 2]
    sys.exit(reference.main(args, FAULTS[fault]))
