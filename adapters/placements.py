"""From SSDA903 episodes to placement messages, sending only what changed since the last run.

A placement starts on an episode whose reason for new episode (RNE) is S, P, T, B or U and runs on
through episodes that only change legal status (RNE L); it ends on the DEC of its last episode, with
REASON_PLACE_CHANGE (or REC) as the reason. Only placements at a setting the directory knows by its
Ofsted URN are notified, and only to a host authority other than the placing one.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson

from adapters.base import Problem, Record
from broker.directory import Directory
from standard import compose as c

STARTS = frozenset({"S", "P", "T", "B", "U"})
_GENDER = {"M": "male", "F": "female", "U": "unknown"}


@dataclass
class Placement:
    child: str
    start: date
    place: str
    urn: str | None
    legal_status: str
    provider: str | None
    end: date | None = None
    end_reason: tuple[str, str] | None = None  # (code system id, code)
    row: int = 0


def placements(episodes: Iterable[Record]) -> list[Placement]:
    """Group each child's episodes into placements."""
    by_child: dict[str, list[Record]] = defaultdict(list)
    for record in episodes:
        by_child[record.values["CHILD"]].append(record)
    out: list[Placement] = []
    for child, rows in by_child.items():
        rows.sort(key=lambda r: r.values["DECOM"] or date.min)
        current: Placement | None = None
        for r in rows:
            v = r.values
            if current is None or v.get("RNE") in STARTS:
                current = Placement(child, v["DECOM"], v.get("PLACE") or "", v.get("URN"), v.get("LS") or "",
                                    v.get("PLACE_PROVIDER"), row=r.row)
                out.append(current)
            current.end = v.get("DEC")
            if v.get("REASON_PLACE_CHANGE"):
                current.end_reason = ("ssda903-reason-placement-change", v["REASON_PLACE_CHANGE"])
            elif v.get("REC") and v["REC"] != "X1":
                current.end_reason = ("ssda903-reason-episode-ceased", v["REC"])
            else:
                current.end_reason = None
    return out


@dataclass
class Plan:
    messages: list[tuple[str, dict]] = field(default_factory=list)  # (state key, message)
    problems: list[Problem] = field(default_factory=list)
    unchanged: int = 0
    out_of_scope: int = 0


class ChangeStore:
    """What was already sent: a digest of each placement fact, by key."""

    def __init__(self, path: Path | str):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, digest TEXT NOT NULL, "
                        "message_id TEXT NOT NULL)")

    def digest_of(self, key: str) -> str | None:
        row = self.db.execute("SELECT digest FROM sent WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def remember(self, key: str, digest: str, message_id: str) -> None:
        self.db.execute("INSERT INTO sent (key, digest, message_id) VALUES (?,?,?) ON CONFLICT (key) DO UPDATE SET "
                        "digest = excluded.digest, message_id = excluded.message_id", (key, digest, message_id))


def _digest(*parts: object) -> str:
    return hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()


def plan_messages(la_code: str, headers: Iterable[Record], episodes: Iterable[Record], directory: Directory,
                  store: ChangeStore, *, file: str = "episodes") -> Plan:
    """The messages to send for this export, given what was sent before."""
    sender = f"la-{la_code}"
    children = {r.values["CHILD"]: r for r in headers}
    plan = Plan()
    for p in placements(episodes):
        setting = directory.setting(p.urn) if p.urn else None
        if setting is None or setting.host_la == sender:
            plan.out_of_scope += 1
            continue
        child = children.get(p.child)
        if child is None:
            plan.problems.append(Problem("child-not-in-header", file, p.row, "CHILD", "the child has episodes but "
                                         "no row in the Header table; include the Header file in the run"))
            continue
        if child.values.get("DOB") is None:
            plan.problems.append(Problem("missing-value", "header", child.row, "DOB", "the child's date of birth "
                                         "is needed for placement notifications; record it"))
            continue
        facts = (p.child, p.start, p.place, p.urn, p.legal_status, p.provider)
        start_key = f"start|{p.child}|{p.start}|{p.urn}"
        known = store.digest_of(start_key)
        digest = _digest(*facts)
        if known != digest:
            event = "placement-started" if known is None else "placement-changed"
            plan.messages.append((f"{start_key}|{digest}", _message(event, sender, la_code, p, child, setting.name,
                                                                     ended=False)))
        else:
            plan.unchanged += 1
        if p.end is not None:
            end_key = f"end|{p.child}|{p.start}|{p.urn}"
            end_digest = _digest(*facts, p.end, p.end_reason)
            if store.digest_of(end_key) != end_digest:
                if p.end_reason is None:
                    plan.problems.append(Problem("missing-value", file, p.row, "REASON_PLACE_CHANGE",
                                                 "an ended placement needs REASON_PLACE_CHANGE or REC; the end "
                                                 "will be sent once it is recorded"))
                else:
                    plan.messages.append((f"{end_key}|{end_digest}", _message("placement-ended", sender, la_code, p,
                                                                               child, setting.name, ended=True)))
            else:
                plan.unchanged += 1
    return plan


def _message(event: str, sender: str, la_code: str, p: Placement, child: Record, setting_name: str, *,
             ended: bool) -> dict:
    b = c.MessageBuilder(event, sender)
    v = child.values
    child_ref = b.add(c.child(p.child, la_code, v["DOB"].isoformat(), _GENDER.get(v.get("SEX") or "U", "unknown")))
    episode = b.add(c.looked_after_episode(child_ref, sender, p.legal_status, p.start.isoformat()))
    setting = b.add(c.setting(p.urn, setting_name))
    b.add(c.placement(child_ref, episode, setting, p.place, p.start.isoformat(), provider_type=p.provider,
                      end=p.end.isoformat() if ended and p.end else None,
                      end_reason=p.end_reason if ended else None), focus=True)
    return b.build()
