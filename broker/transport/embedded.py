"""The embedded transport: durable queues in one SQLite file, safe across processes on one machine."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker.transport.base import (
    CONNECTION_USER,
    DEAD_LETTER,
    DEFAULT_DELIVERY_LIMIT,
    Capabilities,
    Delivery,
    Envelope,
    Transport,
    unroutable,
)
from standard.errors import TransportUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    lease TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
"""


class EmbeddedDelivery(Delivery):
    def __init__(self, transport: EmbeddedTransport, seq: int, lease: str, envelope: Envelope, count: int):
        self._transport, self._seq, self._lease = transport, seq, lease
        self.envelope, self.delivery_count, self.redelivered = envelope, count, count > 1

    def ack(self) -> None:
        self._transport._finish(self._seq, self._lease, None)

    def reject(self, *, requeue: bool = True) -> None:
        self._transport._finish(self._seq, self._lease, "requeue" if requeue else "rejected")


class EmbeddedTransport(Transport):
    """Queues in a SQLite database (WAL, synchronous=FULL: a committed publish survives a crash).

    A consumer leases a message for `lease_seconds`; a consumer that dies without acking lets the
    lease lapse and the message is delivered again, counted as a failed delivery.
    """

    name = "embedded"
    capabilities = Capabilities(declares_queues=True)

    def __init__(self, path: Path | str, *, delivery_limit: int = DEFAULT_DELIVERY_LIMIT, lease_seconds: float = 30.0,
                 poll_interval: float = 0.01):
        self.path = Path(path)
        self.delivery_limit = delivery_limit
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self._local = threading.local()
        self._known: set[str] = set()
        with self._db() as db:
            db.executescript(_SCHEMA)
        self.declare(DEAD_LETTER)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite_db.connect(self.path, page_size=sqlite_db.MESSAGE_PAGE_SIZE)
            except (sqlite3.Error, OSError) as exc:
                raise TransportUnavailable(f"cannot open the embedded queue database {self.path}: {exc}") from exc
            self._local.db = db
        return db

    def declare(self, queue: str) -> None:
        self._db().execute("INSERT OR IGNORE INTO queues (name) VALUES (?)", (queue,))
        self._known.add(queue)

    def _routable(self, db: sqlite3.Connection, queue: str) -> bool:
        if queue in self._known:
            return True
        if db.execute("SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone() is None:
            return False
        self._known.add(queue)
        return True

    def publish(self, queue: str, envelope: Envelope) -> None:
        self.publish_many([(queue, envelope)])

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """One transaction for the batch. Messages without a queue are left out and reported by Unroutable
        after the others are committed, as on RabbitMQ (the transport contract)."""
        db = self._db()
        undelivered = []
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise TransportUnavailable(f"the embedded queue database {self.path} is not writable now: {exc}") from exc
        try:
            rows = []
            for i, (queue, envelope) in enumerate(items):
                if not self._routable(db, queue):
                    undelivered.append(i)
                    continue
                # The connection's identity is the transport's to give, never the publisher's: this transport
                # has no users, so a publisher's claim to one is dropped, as the RabbitMQ transport drops it.
                headers = {k: v for k, v in envelope.headers.items() if k != CONNECTION_USER}
                rows.append((queue, envelope.message_id, envelope.body, orjson.dumps(headers).decode()))
            db.executemany("INSERT INTO messages (queue, message_id, body, headers) VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if undelivered:
            raise unroutable(items, undelivered)

    def get(self, queue: str, timeout: float = 0.0) -> EmbeddedDelivery | None:
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take(queue)
            if taken or time.monotonic() >= deadline:
                return taken[0] if taken else None
            time.sleep(self.poll_interval)

    def get_many(self, queue: str, limit: int) -> list[EmbeddedDelivery]:
        return self._take(queue, limit) if limit > 0 else []

    def _take(self, queue: str, limit: int = 1) -> list[EmbeddedDelivery]:
        """Lease up to `limit` waiting messages in one transaction (one commit to disk for the lot)."""
        db = self._db()
        now = time.time()
        taken: list[EmbeddedDelivery] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            while len(taken) < limit:
                rows = db.execute(
                    "SELECT seq, message_id, body, headers, delivery_count FROM messages "
                    "WHERE queue = ? AND lease_until < ? ORDER BY seq LIMIT ?", (queue, now, limit - len(taken))
                ).fetchall()
                if not rows:
                    break
                leased = []
                for seq, message_id, body, headers, count in rows:
                    count += 1
                    headers = orjson.loads(headers)
                    if count > self.delivery_limit + 1:  # more failed deliveries than the limit allows
                        self._dead_letter(db, seq, headers, "delivery_limit")
                        continue
                    lease = uuid.uuid4().hex
                    leased.append((count, now + self.lease_seconds, lease, seq))
                    taken.append(EmbeddedDelivery(self, seq, lease, Envelope(message_id, body, headers), count))
                db.executemany("UPDATE messages SET delivery_count = ?, lease_until = ?, lease = ? WHERE seq = ?",
                               leased)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return taken

    def _dead_letter(self, db: sqlite3.Connection, seq: int, headers: dict, reason: str) -> None:
        row = db.execute("SELECT queue FROM messages WHERE seq = ?", (seq,)).fetchone()
        headers = {**headers, "x-death-reason": reason, "x-death-queue": row[0]}
        db.execute("UPDATE messages SET queue = ?, headers = ?, delivery_count = 0, lease_until = 0, lease = NULL "
                   "WHERE seq = ?", (DEAD_LETTER, orjson.dumps(headers).decode(), seq))

    def _finish(self, seq: int, lease: str, outcome: str | None) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT lease, delivery_count, headers FROM messages WHERE seq = ?", (seq,)).fetchone()
            if row is None or row[0] != lease:
                db.execute("COMMIT")
                return  # the lease lapsed and the message went to another consumer: nothing to do
            if outcome is None:
                db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            elif outcome == "requeue" and row[1] <= self.delivery_limit:
                db.execute("UPDATE messages SET lease_until = 0, lease = NULL WHERE seq = ?", (seq,))
            else:
                self._dead_letter(db, seq, orjson.loads(row[2]),
                                  "rejected" if outcome == "rejected" else "delivery_limit")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Settle the batch in one transaction. A delivery whose lease lapsed (the message went to another
        consumer) is left alone, as a single ack leaves it."""
        own = []
        for delivery in deliveries:
            if isinstance(delivery, EmbeddedDelivery) and delivery._transport is self:
                own.append((delivery._seq, delivery._lease))
            else:
                delivery.ack()
        if not own:
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM messages WHERE seq = ? AND lease = ?", own)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def has_queue(self, queue: str) -> bool:
        return queue in self._known or self._db().execute(
            "SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone() is not None

    def depth(self, queue: str) -> int:
        return self._db().execute("SELECT COUNT(*) FROM messages WHERE queue = ? AND lease_until < ?",
                                  (queue, time.time())).fetchone()[0]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
