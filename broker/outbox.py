"""A participant's durable outbox: messages wait here until the exchange has confirmed them.

Messages are stored unsigned and signed when they are sent, so a message that waited through
a broker outage still carries a fresh issued-at. Each is marked sent only after the transport
confirms it; if the process dies between the two, the message is sent again and the exchange
drops the duplicate by its id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker import signing
from broker.keys import SigningKey
from broker.router import SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, Transport
from sgx.errors import MessageInvalid, RecoverableBrokerError
from standard.validator import Validator


class Outbox:
    def __init__(self, path: Path | str, participant_id: str, key: SigningKey, *, validator: Validator | None = None):
        self.participant_id, self.key = participant_id, key
        self.validator = validator or Validator()
        self.db = sqlite_db.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT "
                        "UNIQUE NOT NULL, event TEXT NOT NULL, body BLOB NOT NULL, sent_at TEXT)")

    def add(self, message: dict | bytes) -> str:
        """Validate and queue a message; returns its id. Adding the same message id again is a no-op.

        Raises:
            MessageInvalid: the message does not pass the validator; nothing was queued.
        """
        ids, refused = self.add_many([message])
        if refused:
            raise refused[0][1]
        return ids[0]

    def add_many(self, messages: list[dict | bytes]) -> tuple[list[str], list[tuple[int, MessageInvalid]]]:
        """Validate and queue many messages in one transaction (one disk sync for the lot). Returns the ids
        queued and, for each message refused, its index and the MessageInvalid error; the others still go."""
        rows, refused = [], []
        for i, message in enumerate(messages):
            body = message if isinstance(message, bytes) else orjson.dumps(message)
            try:
                bundle = self.validator.validate(body)
            except MessageInvalid as exc:
                refused.append((i, exc))
                continue
            rows.append((bundle["identifier"]["value"], bundle["entry"][0]["resource"]["eventCoding"]["code"], body))
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT OR IGNORE INTO outbox (message_id, event, body) VALUES (?, ?, ?)", rows)
        return [r[0] for r in rows], refused

    def pending(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]

    def drain(self, transport: Transport, *, batch: int = 100, limit: int | None = None,
              now: datetime | None = None) -> int:
        """Send what is waiting (at most `limit`), in batches; returns how many were confirmed. Stops
        quietly when the transport is unavailable: the rest waits for the next drain."""
        sent = 0
        while limit is None or sent < limit:
            size = batch if limit is None else min(batch, limit - sent)
            rows = self.db.execute("SELECT seq, message_id, event, body FROM outbox WHERE sent_at IS NULL "
                                   "ORDER BY seq LIMIT ?", (size,)).fetchall()
            if not rows:
                return sent
            items = []
            for _, message_id, event, body in rows:
                signature = signing.sign_message(body, self.key, sender=self.participant_id, message_id=message_id,
                                                 event=event, now=now)
                items.append((INGRESS, Envelope(message_id, body, {SIGNATURE: signature,
                                                                   SENDER: self.participant_id})))
            try:
                transport.publish_many(items)
            except RecoverableBrokerError:
                return sent
            stamp = (now or datetime.now(UTC)).isoformat()
            with sqlite_db.transaction(self.db):
                self.db.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?", [(stamp, r[0]) for r in rows])
            sent += len(rows)
        return sent
