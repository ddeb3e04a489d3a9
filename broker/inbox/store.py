"""The inbox's own database, beside the node's: an index of the node's messages (so lists and filters stay fast
with 100,000 messages), each message's read state, people, and the access log of who saw which child.

The node's inbox stays the record of what arrived; this database is rebuilt from it if lost (read states and the
access log apart, which is why they are kept here and never in the node's file)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker.inbox.facts import case_note
from standard import catalogue as cat

_SCHEMA = """
CREATE TABLE IF NOT EXISTS synced (node_rowid INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, node_rowid INTEGER NOT NULL, event TEXT NOT NULL, sender TEXT NOT NULL,
    received_at TEXT NOT NULL, setting_urn TEXT, setting_name TEXT, status TEXT NOT NULL DEFAULT 'new',
    read_at TEXT, read_by TEXT);
CREATE INDEX IF NOT EXISTS messages_newest ON messages (received_at, node_rowid);
CREATE INDEX IF NOT EXISTS messages_status ON messages (status);
CREATE INDEX IF NOT EXISTS messages_setting ON messages (setting_urn, status, received_at);
CREATE INDEX IF NOT EXISTS messages_event ON messages (event, status, received_at);
-- What the list can be filtered by, kept as messages are indexed (a DISTINCT over every message is slow).
CREATE TABLE IF NOT EXISTS choices (kind TEXT NOT NULL, value TEXT NOT NULL, label TEXT NOT NULL,
    PRIMARY KEY (kind, value));
CREATE TABLE IF NOT EXISTS message_children (message_id TEXT NOT NULL, child_key TEXT NOT NULL,
    placing_la TEXT NOT NULL, PRIMARY KEY (message_id, child_key));
CREATE INDEX IF NOT EXISTS children_key ON message_children (child_key);
CREATE INDEX IF NOT EXISTS children_la ON message_children (placing_la);
CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
    password_hash TEXT NOT NULL, failed INTEGER NOT NULL DEFAULT 0, locked_until TEXT);
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, user TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_log (at TEXT NOT NULL, user TEXT NOT NULL, page TEXT NOT NULL,
    subject TEXT NOT NULL, child_key TEXT);
-- What people did with a message: acknowledged, decided, asked, assigned, noted (notes and assignments stay here).
CREATE TABLE IF NOT EXISTS actions (message_id TEXT NOT NULL, at TEXT NOT NULL, user TEXT NOT NULL,
    kind TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS actions_by_message ON actions (message_id);
"""
# A message's own status moves new -> read -> acknowledged -> decided; overdue is a flag over new and read: not
# acknowledged by the deadline the catalogue sets for its event.
STATUSES = ("new", "read", "acknowledged", "decided", "overdue")
_COLUMNS = (("due_at", "TEXT"), ("assigned_to", "TEXT"))
# Acknowledgements (the exchange's and recipients') are shown on the Sent pages, not listed as mail.
_NOT_LISTED = frozenset({"acknowledgement"})


@dataclass(frozen=True)
class Row:
    message_id: str
    event: str
    sender: str
    received_at: str
    setting_urn: str | None
    setting_name: str | None
    status: str


@dataclass(frozen=True)
class Filters:
    event: str | None = None
    setting: str | None = None
    child: str | None = None
    placing_la: str | None = None
    status: str | None = None


class InboxStore:
    """The web inbox's database for one participant, kept in step with the node's inbox file."""

    def __init__(self, path: Path | str, node_inbox: Path | str, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.path = path
        self._local = threading.local()
        self.db.executescript(_SCHEMA)
        present = {row[1] for row in self.db.execute("PRAGMA table_info(messages)")}
        for column, kind in _COLUMNS:
            if column not in present:  # an inbox from before actions and deadlines
                self.db.execute(f"ALTER TABLE messages ADD COLUMN {column} {kind}")
        self.db.execute("CREATE INDEX IF NOT EXISTS messages_due ON messages (status, due_at)")
        self.node_inbox = Path(node_inbox)
        self.now = now
        self._sync_lock = threading.Lock()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection: the web server answers on several threads, and a SQLite connection (and the
        transactions on it) must belong to one of them at a time."""
        connection = getattr(self._local, "db", None)
        if connection is None:
            connection = self._local.db = sqlite_db.connect(self.path)
        return connection

    def sync(self) -> int:
        """Index the messages the node stored since the last sync; returns how many were new."""
        if not self.node_inbox.exists():
            return 0
        with self._sync_lock:  # one thread indexes at a time; the others then find nothing new
            return self._sync()

    def _sync(self) -> int:
        last = self.db.execute("SELECT max(node_rowid) FROM synced").fetchone()[0] or 0
        node = sqlite3.connect(f"file:{self.node_inbox}?mode=ro", uri=True)
        try:
            rows = node.execute("SELECT rowid, message_id, event, sender, received_at, body FROM inbox "
                                "WHERE rowid > ? ORDER BY rowid", (last,)).fetchall()
        finally:
            node.close()
        if not rows:
            return 0
        messages, children = [], []
        for rowid, message_id, event, sender, received_at, body in rows:
            if event in _NOT_LISTED:
                continue
            note = case_note(orjson.loads(body))
            messages.append((message_id, rowid, event, sender, received_at, note.setting_urn, note.setting_name,
                             _due(event, received_at)))
            children.extend((message_id, c.key, c.placing_la) for c in note.children)
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT OR IGNORE INTO messages (message_id, node_rowid, event, sender, "
                                "received_at, setting_urn, setting_name, due_at) VALUES (?,?,?,?,?,?,?,?)", messages)
            self.db.executemany("INSERT OR IGNORE INTO message_children VALUES (?,?,?)", children)
            self.db.executemany("INSERT OR IGNORE INTO choices VALUES (?,?,?)", {
                *(("event", m[2], m[2]) for m in messages),
                *(("setting", m[5], f"{m[6] or m[5]} ({m[5]})") for m in messages if m[5]),
                *(("placing_la", c[2], c[2]) for c in children)})
            self.db.execute("DELETE FROM synced")
            self.db.execute("INSERT INTO synced VALUES (?)", (rows[-1][0],))
        if not messages:
            return 0
        if len(messages) >= 1000:
            self.db.execute("ANALYZE")  # fresh statistics, so the planner picks the narrowest index per filter
        return len(messages)

    def _where(self, f: Filters) -> tuple[str, list]:
        clauses, args = [], []
        if f.status == "overdue":
            clauses.append("m.status IN ('new', 'read') AND m.due_at < ?")
            args.append(self._stamp())
        for column, value in (("m.event", f.event), ("m.setting_urn", f.setting),
                              ("m.status", f.status if f.status != "overdue" else None)):
            if value:
                clauses.append(f"{column} = ?")  # noqa: S608 - column names are ours, values are parameters
                args.append(value)
        if f.child:
            clauses.append("m.message_id IN (SELECT message_id FROM message_children WHERE child_key = ?)")
            args.append(f.child)
        if f.placing_la:
            clauses.append("m.message_id IN (SELECT message_id FROM message_children WHERE placing_la = ?)")
            args.append(f.placing_la)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def list(self, filters: Filters = Filters(), *, limit: int = 50, offset: int = 0) -> list[Row]:
        where, args = self._where(filters)
        return [Row(*r) for r in self.db.execute(
            f"SELECT m.message_id, m.event, m.sender, m.received_at, m.setting_urn, m.setting_name, {_SHOWN} "  # noqa: S608
            f"FROM messages m{where} ORDER BY m.received_at DESC, m.node_rowid DESC LIMIT ? OFFSET ?",
            [self._stamp(), *args, limit, offset])]

    def counts(self, filters: Filters = Filters()) -> dict[str, int]:
        """How many messages match the filters, by status (the status filter itself left out)."""
        where, args = self._where(Filters(filters.event, filters.setting, filters.child, filters.placing_la))
        found = dict(self.db.execute(f"SELECT m.status, count(*) FROM messages m{where} GROUP BY m.status",  # noqa: S608
                                     args).fetchall())
        where, args = self._where(Filters(filters.event, filters.setting, filters.child, filters.placing_la,
                                          "overdue"))
        found["overdue"] = self.db.execute(f"SELECT count(*) FROM messages m{where}", args).fetchone()[0]  # noqa: S608
        return {s: found.get(s, 0) for s in STATUSES}

    def choices(self) -> dict[str, list[tuple[str, str]]]:
        """The values the list can be filtered by, as (value, label)."""
        out: dict[str, list[tuple[str, str]]] = {"event": [], "setting": [], "placing_la": []}
        for kind, value, label in self.db.execute("SELECT kind, value, label FROM choices ORDER BY kind, label"):
            out[kind].append((value, label))
        return out

    def body(self, message_id: str) -> tuple[Row, bytes, str, dict] | None:
        """The message's row, its bytes as they arrived, how the node verified its signature, and the router's
        delivery note (why this participant received it)."""
        row = self.db.execute(f"SELECT message_id, event, sender, received_at, setting_urn, setting_name, {_SHOWN}, "  # noqa: S608
                              "node_rowid FROM messages m WHERE message_id = ?", (self._stamp(), message_id)).fetchone()
        if row is None:
            return None
        node = sqlite3.connect(f"file:{self.node_inbox}?mode=ro", uri=True)
        try:
            found = node.execute("SELECT body, verified, delivery FROM inbox WHERE rowid = ?", (row[7],)).fetchone()
        finally:
            node.close()
        return (Row(*row[:7]), found[0], found[1], orjson.loads(found[2] or "{}")) if found else None

    def mark_read(self, message_id: str, user: str) -> bool:
        """Record the first reading of a message; True if this was it (the sender is then told it was read)."""
        with sqlite_db.transaction(self.db):
            return self.db.execute("UPDATE messages SET status = 'read', read_at = ?, read_by = ? "
                                   "WHERE message_id = ? AND status = 'new'",
                                   (self._stamp(), user, message_id)).rowcount == 1

    def record_action(self, message_id: str, user: str, kind: str, detail: str | None = None) -> None:
        """Record what a person did with a message, and move its status on: acknowledged (from new or read),
        decided (from any); assigned names the colleague now responsible."""
        with sqlite_db.transaction(self.db):
            self.db.execute("INSERT INTO actions VALUES (?, ?, ?, ?, ?)", (message_id, self._stamp(), user, kind,
                                                                           detail))
            if kind == "acknowledged":
                self.db.execute("UPDATE messages SET status = 'acknowledged', read_at = COALESCE(read_at, ?), "
                                "read_by = COALESCE(read_by, ?) WHERE message_id = ? AND status IN ('new', 'read')",
                                (self._stamp(), user, message_id))
            elif kind == "decided":
                self.db.execute("UPDATE messages SET status = 'decided' WHERE message_id = ?", (message_id,))
            elif kind == "assigned":
                self.db.execute("UPDATE messages SET assigned_to = ? WHERE message_id = ?", (detail, message_id))

    def actions(self, message_id: str) -> list[tuple[str, str, str, str | None]]:
        """(at, user, kind, detail) of what people did with a message, oldest first."""
        return self.db.execute("SELECT at, user, kind, detail FROM actions WHERE message_id = ? ORDER BY rowid",
                               (message_id,)).fetchall()

    def assigned_to(self, message_id: str) -> str | None:
        row = self.db.execute("SELECT assigned_to FROM messages WHERE message_id = ?", (message_id,)).fetchone()
        return row[0] if row else None

    def people(self) -> list[tuple[str, str]]:
        """(email, name) of everyone with an account, to assign a message to."""
        return self.db.execute("SELECT email, name FROM users ORDER BY name").fetchall()

    # -- the node's file, for the sender's view (Outbox.record_acknowledgements / record_responses) --------------
    def acknowledgements(self, after: int = 0) -> list[tuple[int, bytes]]:
        """(row, body) of the exchange's acknowledgements in the node's inbox after row `after`."""
        return self._node_rows("SELECT rowid, body FROM inbox WHERE event = 'acknowledgement' AND sender = 'router' "
                               "AND rowid > ? ORDER BY rowid", (after,))

    def responses(self, after: int = 0) -> list[tuple[int, str, str, bytes]]:
        """(row, responder, event, body) of the responses to this participant's messages after row `after`."""
        from broker.node import responses_in

        if not self.node_inbox.exists():
            return []
        node = sqlite3.connect(f"file:{self.node_inbox}?mode=ro", uri=True)
        try:
            return responses_in(node, after)
        finally:
            node.close()

    def _node_rows(self, sql: str, args: tuple) -> list:
        if not self.node_inbox.exists():
            return []
        node = sqlite3.connect(f"file:{self.node_inbox}?mode=ro", uri=True)
        try:
            return node.execute(sql, args).fetchall()
        finally:
            node.close()

    def log_access(self, user: str, page: str, subject: str, child_keys: list[str]) -> None:
        """Record a view; a view of a child's information is one row per child shown."""
        stamp = self._stamp()
        rows = [(stamp, user, page, subject, key) for key in child_keys] or [(stamp, user, page, subject, None)]
        with sqlite_db.transaction(self.db):
            self.db.executemany("INSERT INTO access_log VALUES (?,?,?,?,?)", rows)

    def access_log(self, limit: int = 200) -> list[tuple]:
        return self.db.execute("SELECT at, user, page, subject, child_key FROM access_log ORDER BY rowid DESC "
                               "LIMIT ?", (limit,)).fetchall()

    def _stamp(self) -> str:
        return self.now().isoformat(timespec="seconds")


# The status a list shows: overdue over new and read once the deadline has passed (the first parameter is now).
_SHOWN = "CASE WHEN m.status IN ('new', 'read') AND m.due_at < ? THEN 'overdue' ELSE m.status END"


def _due(event: str, received_at: str) -> str | None:
    """When a message received at `received_at` becomes overdue unacknowledged (the catalogue's deadline)."""
    known = cat.EVENTS_BY_CODE.get(event)
    if known is None:
        return None
    try:
        due = known.acknowledge_by(datetime.fromisoformat(received_at))
    except ValueError:
        return None
    return due.isoformat(timespec="seconds") if due is not None else None
