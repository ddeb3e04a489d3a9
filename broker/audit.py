"""The audit log: every routing decision in an append-only hash chain.

Each record holds the hash of the one before, so editing, deleting or reordering any record
breaks the chain from that point; `verify` says where. A chain that was cut short, or rewritten
and re-hashed throughout, is still a valid chain: what catches it is a head kept elsewhere. The
router publishes its head (`audit-head.json`, replaced after every batch) and signs it with its key
at intervals (`audit-checkpoints.jsonl`, appended to); `verify_checkpoints` checks the chain against
those signed heads, and operators and participants can keep copies (`sgx audit checkpoint`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import db as sqlite_db
from broker import signing
from broker.keys import SigningKey
from standard.errors import SignatureRejected

GENESIS = "0" * 64
HEAD_FILE = "audit-head.json"  # the newest (seq, hash), rewritten after every batch
_HEAD_SIZE = 160  # bytes: the head is one fixed-size JSON object (space-padded), overwritten in place
CHECKPOINT_FILE = "audit-checkpoints.jsonl"  # signed heads, one JSON object a line, appended to
CHECKPOINT_TYP = "sgx-audit-checkpoint+jws"
CHECKPOINT_EVERY = 1000  # records between signed checkpoints at most ...
CHECKPOINT_INTERVAL = timedelta(seconds=60)  # ... and time between them at most (while records are added)
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
        return self.last()[1]

    def last(self) -> tuple[int, str]:
        """(sequence number, hash) of the newest record; (0, GENESIS) for an empty log."""
        row = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def hash_at(self, seq: int) -> str | None:
        row = self.db.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def decisions_after(self, seq: int) -> tuple[int, dict[str, int]]:
        """The newest record's seq, and how many records of each decision came after record `seq`: read a little
        at a time by whoever counts what a running router decides (progress lines), never the whole log."""
        counts: dict[str, int] = {}
        newest = seq
        for row_seq, record in self.db.execute("SELECT seq, record FROM audit WHERE seq > ? ORDER BY seq", (seq,)):
            decision = orjson.loads(record).get("decision", "")
            counts[decision] = counts.get(decision, 0) + 1
            newest = row_seq
        return newest, counts

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


# -- published and signed heads ------------------------------------------------------------------------

_WRITING = threading.Lock()  # routers side by side in one process share the head and checkpoint files


def _checkpoint_payload(seq: int, head: str, at: str) -> bytes:
    return orjson.dumps({"seq": seq, "hash": head, "time": at}, option=orjson.OPT_SORT_KEYS)


class Checkpoints:
    """The audit head of an exchange folder, published and signed.

    After every batch `after_batch` rewrites `audit-head.json` and, when `every` records or `interval` have
    passed since the last signed checkpoint, appends a checkpoint signed with the router's key to
    `audit-checkpoints.jsonl`. The head is one fixed-size record overwritten in place (one write of 160 bytes,
    no sync): writing a new file and renaming it over the old one made ext4 flush it, a millisecond or more
    per batch; a reader that catches a half-written head reads it again. Anyone holding the router's public key (from
    the directory) can check a checkpoint; a copy kept elsewhere catches a log cut short or rewritten here.
    """

    def __init__(self, root: Path, key: SigningKey | None = None, *, every: int = CHECKPOINT_EVERY,
                 interval: timedelta = CHECKPOINT_INTERVAL):
        self.head_path, self.path = root / HEAD_FILE, root / CHECKPOINT_FILE
        self.key, self.every, self.interval = key, every, interval
        self._last: dict | None = None
        self._head_fd: int | None = None

    def after_batch(self, log: AuditLog, *, now: datetime) -> None:
        """Publish the head; sign a checkpoint when one is due."""
        with _WRITING:
            seq, head = log.last()
            self._write_head(seq, head, now)
            last = self.latest() if self._last is None else self._last
            due = last is None or seq - last["seq"] >= self.every or \
                now - datetime.fromisoformat(last["time"]) >= self.interval
            if self.key is not None and seq > (last["seq"] if last else 0) and due:
                self._append(seq, head, now)

    def sign_now(self, log: AuditLog, *, now: datetime | None = None) -> dict | None:
        """Sign a checkpoint of the current head (when the router stops), unless the last one holds it."""
        moment = now or datetime.now(UTC)
        with _WRITING:
            seq, head = log.last()
            self._write_head(seq, head, moment)
            last = self.latest()
            if self.key is None or seq == 0 or (last is not None and last["seq"] >= seq):
                return last
            return self._append(seq, head, moment)

    def _write_head(self, seq: int, head: str, now: datetime) -> None:
        record = orjson.dumps({"seq": seq, "hash": head, "time": now.astimezone(UTC).isoformat(timespec="seconds")})
        if self._head_fd is None:
            self._head_fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._head_fd, _HEAD_SIZE)
        os.pwrite(self._head_fd, record.ljust(_HEAD_SIZE), 0)

    def close(self) -> None:
        if self._head_fd is not None:
            os.close(self._head_fd)
            self._head_fd = None

    def __del__(self) -> None:
        self.close()

    def _append(self, seq: int, head: str, now: datetime) -> dict:
        assert self.key is not None
        at = now.astimezone(UTC).isoformat(timespec="seconds")
        jws = signing.sign(_checkpoint_payload(seq, head, at), self.key, signing.SignedHeader(
            self.key.kid, "router", f"audit-checkpoint-{seq}", "audit-checkpoint", int(now.timestamp()),
            CHECKPOINT_TYP))
        checkpoint = {"seq": seq, "hash": head, "time": at, "signature": jws}
        with open(self.path, "ab") as fh:
            fh.write(orjson.dumps(checkpoint) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._last = checkpoint
        return checkpoint

    def read(self) -> list[dict]:
        """Every checkpoint in the folder's file, oldest first (an unreadable line is skipped: verify says so)."""
        return read_checkpoints(self.path)

    def latest(self) -> dict | None:
        found = self.read()
        return found[-1] if found else None

    def published_head(self) -> dict | None:
        """The unsigned head of `audit-head.json`, if there is one."""
        for _ in range(3):  # a read that meets a write in progress is read again
            try:
                return orjson.loads(self.head_path.read_bytes().strip())
            except OSError:
                return None
            except orjson.JSONDecodeError:
                continue
        return None


def read_checkpoints(path: Path) -> list[dict]:
    """Checkpoints from a file: JSON lines as the router writes them, or one JSON object or list (a copy kept
    by an operator or participant, as `sgx audit checkpoint` prints)."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        whole = orjson.loads(text)
        return whole if isinstance(whole, list) else [whole]
    except orjson.JSONDecodeError:
        pass
    found = []
    for line in text.splitlines():
        try:
            found.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            found.append({"unreadable": True})
    return found


def verify_checkpoints(log: AuditLog, checkpoints: list[dict],
                       public_key_for: Callable[[str, str, int], Ed25519PublicKey]) -> list[Problem]:
    """Check the chain against signed checkpoints: each must verify with the router's key (from the
    directory), and the record it names must be in the log with the hash it signed. A log cut short ends
    before a checkpoint; a log rewritten and re-hashed has another hash there."""
    problems: list[Problem] = []
    last_seq = log.last()[0]
    for checkpoint in checkpoints:
        try:
            seq, head, at, jws = (checkpoint["seq"], checkpoint["hash"], checkpoint["time"],
                                  checkpoint["signature"])
            moment = datetime.fromisoformat(at)
            signing.verify(_checkpoint_payload(seq, head, at), jws, public_key_for, expected_sender="router",
                           typ=CHECKPOINT_TYP, now=moment, window_seconds=5)
        except (KeyError, TypeError, ValueError):
            problems.append(Problem(0, "a checkpoint is unreadable: the checkpoint file was edited"))
            continue
        except SignatureRejected as exc:
            problems.append(Problem(seq, f"the checkpoint of record {seq} is not the router's ({exc})"))
            continue
        if seq > last_seq:
            problems.append(Problem(seq, f"the log ends at record {last_seq} but a checkpoint signed at {at} covers "
                                         f"record {seq}: the newest records were removed"))
        elif log.hash_at(seq) != head:
            problems.append(Problem(seq, f"record {seq} is not the one the router signed at {at}: the chain was "
                                         "rewritten (and re-hashed) at or before it"))
    return problems
