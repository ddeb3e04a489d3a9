"""What the exchange routed: each accepted message's sender, event and recipients, by message id.

A response (an acknowledgement from a person, a decision, a request for more information) names the message it
answers; the router reads this record to send the response to that message's sender, and only when the responder
was one of its recipients. Identifiers only: never a message's content or a child."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from broker import db as sqlite_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS routed (message_id TEXT NOT NULL, recipient TEXT NOT NULL, sender TEXT NOT NULL,
    event TEXT NOT NULL, routed_at INTEGER NOT NULL, PRIMARY KEY (message_id, recipient));
CREATE INDEX IF NOT EXISTS routed_by_time ON routed (routed_at);
"""
# How long a message can be answered: a LADO's decision or a request for more information may come months after
# the referral; after this the record is forgotten and a late response is refused like one about an unknown id.
RESPONSE_WINDOW_SECONDS = 400 * 86400


@dataclass(frozen=True)
class Original:
    """A message the exchange routed: who sent it, its event, and who it was delivered to."""

    message_id: str
    sender: str
    event: str
    recipients: frozenset[str]


class Routed:
    """The record of routed messages (kept in the router's database, so a batch records it in its one commit)."""

    def __init__(self, path: Path | str | sqlite3.Connection):
        self.db = sqlite_db.connect(path)
        self.db.executescript(_SCHEMA)

    def record_many(self, rows: Iterable[tuple[str, str, str, str, int]]) -> None:
        """Record (message_id, recipient, sender, event, routed_at) rows."""
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT OR IGNORE INTO routed VALUES (?, ?, ?, ?, ?)", list(rows))

    def prune(self, before: datetime) -> int:
        """Forget what was routed before `before`; returns how many recipient records went."""
        with sqlite_db.transaction(self.db):
            return self.db.execute("DELETE FROM routed WHERE routed_at < ?", (int(before.timestamp()),)).rowcount

    def original(self, message_id: str, pending: Iterable[tuple[str, str, str, str, int]] = ()) -> Original | None:
        """The routed message with this id (from the database, or from `pending` rows not yet written), or None."""
        rows = [(r[1], r[2], r[3]) for r in pending if r[0] == message_id] or self.db.execute(
            "SELECT recipient, sender, event FROM routed WHERE message_id = ?", (message_id,)).fetchall()
        if not rows:
            return None
        return Original(message_id, rows[0][1], rows[0][2], frozenset(r[0] for r in rows))
