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
from standard import catalogue as cat
from standard.errors import DirectoryExpired, SignatureRejected

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


# Age is no reason for a node to refuse mail: the router judged freshness when the message entered the exchange,
# and the inbox stores each message id once, so a replay cannot be stored twice. A node offline for a week
# takes everything waiting for it.
NO_AGE_LIMIT = 100 * 365 * 86400


class Node:
    def __init__(self, participant_id: str, directory: Directory, transport: Transport, inbox_path: Path | str, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), window_seconds: int | None = None):
        self.participant_id, self.directory, self.transport = participant_id, directory, transport
        self.trust = LiveDirectory(directory)  # follows the signed file it was loaded from
        self.now = now
        self.window_seconds = window_seconds or NO_AGE_LIMIT
        self.taken = 0  # deliveries taken from the queue by the last run, stored or not
        self.db = sqlite_db.connect(inbox_path, page_size=sqlite_db.MESSAGE_PAGE_SIZE)
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
        dead-letter the ones that fail verification (the router tells their sender). Returns how many were
        stored or already held. A delivery that breaks the node is handled alone, so its batch-mates are stored;
        it goes back to the queue (and is dead-lettered at the delivery limit, its sender told)."""
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
            except Exception:
                log.exception("could not verify delivery %s; it goes back to the queue", delivery.envelope.message_id)
                delivery.reject(requeue=True)
                continue
            rows.append((signed.message_id, signed.event, signed.sender, self.now().isoformat(timespec="seconds"),
                         f"signature by {signed.sender} key {signed.kid} verified", orjson.dumps(note).decode(),
                         delivery.envelope.body))
            good.append(delivery)
        return self._store(rows, good)

    def _store(self, rows: list[tuple], good: list[Delivery]) -> int:
        try:
            if rows:
                with sqlite_db.transaction(self.db):
                    self.db.executemany(
                        "INSERT OR IGNORE INTO inbox (message_id, event, sender, received_at, verified, delivery, "
                        "body) VALUES (?,?,?,?,?,?,?)", rows)
        except Exception:
            if len(good) > 1:
                return sum(self._store([row], [d]) for row, d in zip(rows, good, strict=True))
            log.exception("could not store delivery %s; it goes back to the queue", good[0].envelope.message_id)
            good[0].reject(requeue=True)
            return 0
        self.transport.ack_many(good)  # only now: the messages are durably stored
        return len(good)

    def run(self, *, idle_timeout: float | None = 1.0, max_messages: int | None = None, batch_size: int = 100,
            should_stop: Callable[[], bool] = lambda: False, after_batch: Callable[[], object] | None = None) -> int:
        """Receive until none arrives for `idle_timeout` seconds (None: until `should_stop`). Returns how many
        were stored (or already held); what else the run took (`self.taken` minus that) was refused or handed
        back, and is never counted as received. `after_batch` runs once each batch is stored and acked (the
        node's delivery receipts)."""
        stored = 0

        def receive(batch: list[Delivery]) -> None:
            nonlocal stored
            stored += self.receive_many(batch)
            if after_batch is not None:
                after_batch()

        def stop() -> bool:
            self.directory = self.trust.current(self.now())  # raises once the directory has expired
            return should_stop()

        self.taken = consume(self.transport, delivery_queue(self.participant_id), receive,
                             idle_timeout=idle_timeout, max_messages=max_messages, batch_size=batch_size,
                             should_stop=stop)
        return stored

    def acknowledgements(self, after: int = 0) -> list[tuple[int, bytes]]:
        """(row, body) of the router's acknowledgements stored after row `after`, oldest first."""
        return self.db.execute("SELECT rowid, body FROM inbox WHERE event = 'acknowledgement' AND sender = 'router' "
                               "AND rowid > ? ORDER BY rowid", (after,)).fetchall()

    def responses(self, after: int = 0) -> list[tuple[int, str, str, bytes]]:
        """(row, responder, event, body) of the responses to this participant's messages (business
        acknowledgements, decisions, requests for more information) stored after row `after`, oldest first."""
        return responses_in(self.db, after)

    def inbox(self) -> list[InboxItem]:
        return [InboxItem(m, e, s, r, v, orjson.loads(d), b) for m, e, s, r, v, d, b in self.db.execute(
            "SELECT message_id, event, sender, received_at, verified, delivery, body FROM inbox ORDER BY rowid")]


RESPONSE_EVENTS = tuple(e.code for e in cat.EVENTS if e.responds)


def responses_in(db, after: int) -> list[tuple[int, str, str, bytes]]:
    """The responses in a node's inbox database after row `after` (the router's own acknowledgements apart)."""
    marks = ", ".join("?" for _ in RESPONSE_EVENTS)
    return db.execute(f"SELECT rowid, sender, event, body FROM inbox WHERE event IN ({marks}) "  # noqa: S608
                      "AND sender != 'router' AND rowid > ? ORDER BY rowid", (*RESPONSE_EVENTS, after)).fetchall()
