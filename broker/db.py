"""SQLite as every part of the exchange opens it: WAL with full syncs (a commit is on disk before anything is
acknowledged), a generous busy timeout, and write transactions that nest into the caller's.

The router keeps seen ids, the register and the audit chain in one database (`router.db`), so what a batch
records is one commit: a transaction over several attached WAL databases syncs each of them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# For a database that holds whole messages (an outbox, a queue, an inbox). A message of about 3 KB takes a 4 KB
# page to itself; on 16 KB pages five share one, so a batch of them writes, syncs and checkpoints a fifth as many
# pages (four fifths of the bytes). Measured: queueing 135,000 messages through an outbox into a queue took 8.5 s
# against 12.
MESSAGE_PAGE_SIZE = 16384


def connect(path_or_db: Path | str | sqlite3.Connection, *, page_size: int | None = None) -> sqlite3.Connection:
    """A connection in WAL mode with full syncs, or the connection given (so parts can share one). `page_size`
    applies only to a database created here (an existing one keeps the size it was made with)."""
    if isinstance(path_or_db, sqlite3.Connection):
        return path_or_db
    # Every database holds messages, ids or pseudonyms: made readable by its owner only (SQLite gives its -wal
    # and -shm files the same permissions).
    path = Path(path_or_db)
    if str(path) != ":memory:" and not path.exists() and path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    # Each connection is used by one thread at a time, but may be made on another thread than it runs on.
    db = sqlite3.connect(path_or_db, timeout=30, isolation_level=None, check_same_thread=False)
    if page_size is not None:  # before the first table and before WAL mode: in WAL mode the size is fixed
        db.execute(f"PRAGMA page_size={int(page_size)}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, or part of the caller's when one is already open on this connection."""
    if db.in_transaction:
        yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
