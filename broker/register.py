"""The register of children living away from home, kept by the exchange from placement messages.

It answers "which placing authorities have children at setting X now, and which children". A
child is held only as a pseudonym keyed by the exchange's secret: the register never stores a
name, date of birth, NHS number or the placing authority's own child id.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from broker import db as sqlite_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS placements (
    child TEXT NOT NULL,
    placing_la TEXT NOT NULL,
    setting_urn TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT,
    message_id TEXT NOT NULL,
    PRIMARY KEY (child, setting_urn, start)
);
CREATE INDEX IF NOT EXISTS placements_by_setting ON placements (setting_urn);
"""


@dataclass(frozen=True)
class Placement:
    child: str
    placing_la: str
    setting_urn: str
    start: str
    end: str | None


class Register:
    def __init__(self, path: Path | str | sqlite3.Connection, secret: bytes):
        self.db = sqlite_db.connect(path)
        self.db.executescript(_SCHEMA)
        self._secret = secret

    def pseudonym(self, placing_la: str, local_child_id: str) -> str:
        """A stable pseudonym: the same child of the same authority always maps to the same value."""
        mac = hmac.new(self._secret, f"{placing_la}\x1f{local_child_id}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def record(self, event: str, child: str, placing_la: str, setting_urn: str, start: str, end: str | None,
               message_id: str) -> None:
        """Apply a placement-started, -changed or -ended message."""
        self.record_many([(event, child, placing_la, setting_urn, start, end, message_id)])

    def record_many(self, placements: list[tuple[str, str, str, str, str, str | None, str]]) -> None:
        """Apply several placement messages (event, child, placing LA, URN, start, end, message id) at once."""
        if any(event == "placement-ended" and end is None for event, *_, end, _ in placements):
            raise ValueError("an ended placement needs an end date")
        with sqlite_db.transaction(self.db):
            self.db.executemany(
                "INSERT INTO placements (child, placing_la, setting_urn, start, end, message_id) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (child, setting_urn, start) DO UPDATE SET "
                # A started or changed message that arrives after the end (a redelivery, or two messages
                # routed out of order) must not reopen the placement.
                "end = COALESCE(excluded.end, placements.end), "
                "placing_la = excluded.placing_la, message_id = excluded.message_id",
                [p[1:] for p in placements])

    def children_at(self, setting_urn: str, on: str) -> dict[str, list[str]]:
        """Placing LA -> pseudonyms of its children at the setting on a date (ISO yyyy-mm-dd)."""
        rows = self.db.execute(
            "SELECT placing_la, child FROM placements WHERE setting_urn = ? AND start <= ? "
            "AND (end IS NULL OR end >= ?) ORDER BY placing_la, child", (setting_urn, on, on))
        out: dict[str, list[str]] = defaultdict(list)
        for la, child in rows:
            if child not in out[la]:
                out[la].append(child)
        return dict(out)

    def placements(self) -> list[Placement]:
        return [Placement(*row) for row in self.db.execute(
            "SELECT child, placing_la, setting_urn, start, end FROM placements ORDER BY setting_urn, start")]
