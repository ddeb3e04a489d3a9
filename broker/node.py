"""A receiving node: takes its participant's queue, verifies, stores each message once, then acks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker import signing
from broker.directory import Directory, LiveDirectory
from broker.router import DELIVERY, DELIVERY_SIGNATURE, DELIVERY_TYP, SIGNATURE
from broker.transport import Delivery, Transport, delivery_queue
from broker.transport.base import consume
from sgx.errors import DirectoryExpired, SignatureRejected

log = logging.getLogger("sgx.node")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    sender TEXT NOT NULL,
    received_at TEXT NOT NULL,
    verified TEXT NOT NULL,
    delivery TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class InboxItem:
    message_id: str
    event: str
    sender: str
    received_at: str
    verified: str
    delivery: dict
    body: bytes


class Node:
    def __init__(self, participant_id: str, directory: Directory, transport: Transport, inbox_path: Path | str, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), window_seconds: int = 3600):
        self.participant_id, self.directory, self.transport = participant_id, directory, transport
        self.trust = LiveDirectory(directory)  # follows the signed file it was loaded from
        self.now = now
        # A node may read its queue hours after routing; the router already enforced the short window.
        self.window_seconds = window_seconds
        self.db = sqlite_db.connect(inbox_path)
        self.db.executescript(_SCHEMA)

    def verify(self, delivery: Delivery) -> tuple[signing.SignedHeader, dict]:
        env = delivery.envelope
        sender = signing.verify(env.body, env.headers.get(SIGNATURE, ""), self.directory.public_key_for,
                                now=self.now(), window_seconds=self.window_seconds)
        note: dict = {}
        if DELIVERY in env.headers:
            note_bytes = env.headers[DELIVERY].encode()
            signing.verify(note_bytes, env.headers.get(DELIVERY_SIGNATURE, ""), self.directory.public_key_for,
                           expected_sender="router", typ=DELIVERY_TYP, now=self.now(),
                           window_seconds=self.window_seconds)
            note = orjson.loads(note_bytes)
            if note.get("recipient") != self.participant_id or note.get("message_id") != sender.message_id:
                raise SignatureRejected("the delivery note is for another recipient or message")
        elif sender.sender != "router":
            raise SignatureRejected("a routed message must carry the router's delivery note")
        return sender, note

    def receive(self, delivery: Delivery) -> bool:
        """Store one delivery (idempotently) and ack it; a message that fails verification is dead-lettered."""
        return self.receive_many([delivery]) == 1

    def receive_many(self, deliveries: list[Delivery]) -> int:
        """Verify each delivery, store the good ones in one transaction (a message id once), then ack them;
        dead-letter the ones that fail verification. Returns how many were stored or already held."""
        try:
            self.directory = self.trust.current(self.now())  # a newly signed directory applies from this batch
        except DirectoryExpired:
            for delivery in deliveries:
                delivery.reject(requeue=True)  # they wait for a current directory
            raise
        rows, good = [], []
        for delivery in deliveries:
            try:
                signed, note = self.verify(delivery)
            except SignatureRejected as exc:
                log.warning("refused a delivery (%s): %s", type(exc).__name__, exc)
                delivery.reject(requeue=False)
                continue
            rows.append((signed.message_id, signed.event, signed.sender, self.now().isoformat(timespec="seconds"),
                         f"signature by {signed.sender} key {signed.kid} verified", orjson.dumps(note).decode(),
                         delivery.envelope.body))
            good.append(delivery)
        if rows:
            with sqlite_db.transaction(self.db):
                self.db.executemany(
                    "INSERT OR IGNORE INTO inbox (message_id, event, sender, received_at, verified, delivery, body) "
                    "VALUES (?,?,?,?,?,?,?)", rows)
        self.transport.ack_many(good)  # only now: the messages are durably stored
        return len(good)

    def run(self, *, idle_timeout: float | None = 1.0, max_messages: int | None = None, batch_size: int = 100,
            should_stop: Callable[[], bool] = lambda: False) -> int:
        """Receive until none arrives for `idle_timeout` seconds (None: until `should_stop`)."""
        def stop() -> bool:
            self.directory = self.trust.current(self.now())  # raises once the directory has expired
            return should_stop()

        return consume(self.transport, delivery_queue(self.participant_id), self.receive_many,
                       idle_timeout=idle_timeout, max_messages=max_messages, batch_size=batch_size,
                       should_stop=stop)

    def inbox(self) -> list[InboxItem]:
        return [InboxItem(m, e, s, r, v, orjson.loads(d), b) for m, e, s, r, v, d, b in self.db.execute(
            "SELECT message_id, event, sender, received_at, verified, delivery, body FROM inbox ORDER BY rowid")]
