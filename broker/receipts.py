"""Delivery receipts: a node tells each sender that its message reached the recipient's own system (verified
and stored), as a business acknowledgement with the code `delivered`, so the sender's view can say "delivered to
the recipient's node" and not only "queued for it".

Receipts are sent for messages that expect an acknowledgement (the catalogue gives their event a deadline) from a
participant (the exchange's own messages are not answered). They go the way of every message the participant
sends: validated into its outbox, signed and sent from there; a cursor in the outbox's database remembers which
inbox rows were answered, so a restart sends none twice (and a duplicate would be dropped by the exchange)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from broker import db as sqlite_db
from broker.outbox import Outbox
from broker.transport import Transport
from standard import catalogue as cat
from standard import compose
from standard.errors import RecoverableBrokerError

_SCHEMA = "CREATE TABLE IF NOT EXISTS receipt_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), inbox_row INTEGER " \
          "NOT NULL);"


def expects_acknowledgement(event: str, sender: str) -> bool:
    """Whether a received message is to be acknowledged through the exchange: its event has an acknowledgement
    deadline in the catalogue, and a participant (not the exchange itself) sent it."""
    known = cat.EVENTS_BY_CODE.get(event)
    return known is not None and known.acknowledge_working_days is not None and sender != "router"


class DeliveryReceipts:
    """Sends `delivered` acknowledgements for what a node stored since the last call."""

    def __init__(self, node_db: sqlite3.Connection, outbox: Outbox, open_transport: Callable[[], Transport]):
        self.node_db, self.outbox, self._open_transport = node_db, outbox, open_transport
        self._transport: Transport | None = None
        self.outbox.db.executescript(_SCHEMA)
        with sqlite_db.transaction(self.outbox.db):
            # Started on a node that already holds messages: receipts begin with what arrives from now on.
            last = self.node_db.execute("SELECT coalesce(max(rowid), 0) FROM inbox").fetchone()[0]
            self.outbox.db.execute("INSERT OR IGNORE INTO receipt_cursor (id, inbox_row) VALUES (1, ?)", (last,))

    def send(self) -> int:
        """Queue a receipt for each new message that expects one, then send what waits; returns how many were
        queued. If the exchange cannot be reached they wait in the outbox for the next call."""
        after = self.outbox.db.execute("SELECT inbox_row FROM receipt_cursor").fetchone()[0]
        rows = self.node_db.execute("SELECT rowid, message_id, event, sender FROM inbox WHERE rowid > ? "
                                    "ORDER BY rowid", (after,)).fetchall()
        if not rows:
            return 0
        receipts = [compose.acknowledgement(message_id, self.outbox.participant_id, "delivered")
                    for _, message_id, event, sender in rows if expects_acknowledgement(event, sender)]
        queued, _ = self.outbox.add_many(receipts)  # a receipt the validator refuses is not sent, never half-sent
        with sqlite_db.transaction(self.outbox.db):
            self.outbox.db.execute("UPDATE receipt_cursor SET inbox_row = ? WHERE id = 1", (rows[-1][0],))
        try:
            if self._transport is None:
                self._transport = self._open_transport()
            self.outbox.drain(self._transport)
        except RecoverableBrokerError:
            self._transport = None
        return len(queued)
