"""The audit log: every routing decision in an append-only hash chain.

Each record holds the hash of the one before, so editing, deleting or reordering any record
breaks the chain from that point; `verify` says where. Truncating the newest records is caught
by checking the head against a hash kept elsewhere (`verify(expect_head=...)`), which the
router prints after each batch and operators record.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import db as sqlite_db

GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def _hash(prev_hash: str, seq: int, record: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{record}".encode()).hexdigest()


def entry(*, message_id: str, digest: str, sender: str, event: str, recipients: list[str], decision: str,
          reason: str | None = None, at: datetime | None = None) -> str:
    """One audit record, serialised as it is hashed."""
    return orjson.dumps({
        "time": (at or datetime.now(UTC)).isoformat(timespec="microseconds"), "message_id": message_id,
        "digest": digest, "sender": sender, "event": event, "recipients": recipients, "decision": decision,
        "reason": reason}, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True)
class Problem:
    seq: int
    what: str


class AuditLog:
    def __init__(self, path: Path | str | sqlite3.Connection):
        self.db = sqlite_db.connect(path)
        self.db.executescript(_SCHEMA)

    def append(self, *, message_id: str, digest: str, sender: str, event: str, recipients: list[str],
               decision: str, reason: str | None = None, at: datetime | None = None) -> str:
        """Record a decision; returns the new head hash. Holds no personal data: ids, digests and codes only."""
        return self.append_many([entry(message_id=message_id, digest=digest, sender=sender, event=event,
                                       recipients=recipients, decision=decision, reason=reason, at=at)])

    def append_many(self, records: list[str]) -> str:
        """Record several decisions (from `entry`) in one transaction; returns the new head hash."""
        with sqlite_db.transaction(self.db):
            last = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0], last[1]) if last else (0, GENESIS)
            rows = []
            for record in records:
                seq += 1
                digest_ = _hash(prev, seq, record)
                rows.append((seq, record, prev, digest_))
                prev = digest_
            self.db.executemany("INSERT INTO audit (seq, record, prev_hash, hash) VALUES (?,?,?,?)", rows)
        return prev

    def head(self) -> str:
        row = self.db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return row[0] if row else GENESIS

    def records(self) -> list[dict]:
        return [{"seq": seq, **orjson.loads(record)} for seq, record in
                self.db.execute("SELECT seq, record FROM audit ORDER BY seq")]

    def verify(self, *, expect_head: str | None = None) -> list[Problem]:
        """Every break in the chain; an empty list means the log is intact."""
        problems: list[Problem] = []
        prev, expected_seq = GENESIS, 1
        for seq, record, prev_hash, stored in self.db.execute(
                "SELECT seq, record, prev_hash, hash FROM audit ORDER BY rowid"):
            if seq != expected_seq:
                problems.append(Problem(seq, f"expected record {expected_seq} here: records deleted or reordered"))
            if prev_hash != prev:
                problems.append(Problem(seq, "does not follow the record before it: deleted, inserted or reordered"))
            if _hash(prev_hash, seq, record) != stored:
                problems.append(Problem(seq, "content does not match its hash: the record was edited"))
            prev, expected_seq = stored, seq + 1
        if expect_head is not None and prev != expect_head:
            problems.append(Problem(expected_seq - 1, "the newest records differ from the recorded head: the log "
                                                      "was truncated or rewritten"))
        return problems
