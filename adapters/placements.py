"""From placements (SSDA903 episodes, Annex A rows) to placement messages, sending only what changed.

A placement starts on an episode whose reason for new episode (RNE) is S, P, T, B or U and runs on
through episodes that only change legal status (RNE L); it ends on the DEC of its last episode, with
REASON_PLACE_CHANGE (or REC) as the reason.

Where the child lives decides who is told. In order: the setting's Ofsted URN in the directory; otherwise
the placement's postcode when it is the registered postcode of exactly one setting in the directory; the
authority named in PL_LA (or Annex A's "LA of Placement") checks the result and, when the setting is not in
the directory, says whose area it is in. A confidential placement is never located by its address. Only
placements in another authority's area are notified.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, partial
from pathlib import Path
from typing import NamedTuple

import orjson

from adapters.authorities import OUTSIDE_ENGLAND, Authorities, normalise_postcode
from adapters.base import Problem, Record, RowId, message_id_for
from adapters.outcomes import HELD_BACK, NOT_NOTIFIABLE, UNCHANGED
from broker import db as sqlite_db
from broker.directory import Directory, Setting
from standard import compose as c
from standard.validator import event_of

STARTS = frozenset({"S", "P", "T", "B", "U"})
_GENDER = {"M": "male", "F": "female", "U": "unknown"}
NO_URN = "XXXXXXX"  # DfE: provider not inspected by Ofsted


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
    postcode: str | None = None  # of the placement; used to find the setting, never sent or logged
    authority: str | None = None  # PL_LA or "LA of Placement" as the export gives it
    confidential: bool = False
    file: str = "episodes"
    columns: tuple[str, str] = ("PL_LA", "URN")  # what the export calls the authority and URN, for problems
    rows: list[RowId] = field(default_factory=list)  # the rows it was made from (each episode)
    held: bool = False  # its episodes overlap or cannot follow each other: a finding says so; nothing is sent


@dataclass
class ChildDetails:
    birth_date: date | None
    sex: str | None  # M, F or U
    row: int
    file: str = "header"
    rows: list[RowId] = field(default_factory=list)  # every row that states the child's facts
    conflict: tuple[str, ...] = ()  # fields on which those rows disagree: the child's messages are held


def child_facts(records: Iterable[Record], fields: dict[str, str], *, table_word: str = "rows",
                conflicts: list[Problem] | None = None) -> dict[str, ChildDetails]:
    """Each child's details from the rows that state them (`fields`: our name DOB/SEX/... -> the export's
    column name, for findings). Rows that disagree on a field mark the child conflicting: its messages are
    held (one finding per child and field, at the first row that disagrees) until the export is corrected."""
    children: dict[str, ChildDetails] = {}
    seen: dict[str, dict[str, object]] = {}
    for r in records:
        v = r.values
        child = v["CHILD"]
        known = children.get(child)
        if known is None:
            children[child] = ChildDetails(v.get("DOB"), v.get("SEX"), r.row, r.file, [r.where])
            seen[child] = {f: v.get(f) for f in fields}
            continue
        known.rows.append(r.where)
        for f, column in fields.items():
            value, first = v.get(f), seen[child].get(f)
            if value is None:
                continue
            if first is None:
                seen[child][f] = value
                if f == "DOB":
                    known.birth_date = value
                elif f == "SEX":
                    known.sex = value
            elif value != first and f not in known.conflict:
                known.conflict = (*known.conflict, f)
                if conflicts is not None:
                    conflicts.append(Problem(
                        "conflicting-child-facts", r.file, r.row, column, f"the export has {table_word} for this "
                        f"child that disagree on {column} (first at {known.file} row {known.row}); nothing about "
                        "the child is sent until the export gives one value: correct it in the case management "
                        "system"))
    return children


def placements(episodes: Iterable[Record], problems: list[Problem] | None = None) -> list[Placement]:
    """Group each child's SSDA903 episodes into placements. A child whose episodes overlap, follow an open
    episode, or end before they start has every placement held, with a finding naming the row."""
    by_child: dict[str, list[Record]] = defaultdict(list)
    for record in episodes:
        by_child[record.values["CHILD"]].append(record)
    out: list[Placement] = []
    for child, rows in by_child.items():
        rows.sort(key=lambda r: r.values["DECOM"] or date.min)
        current: Placement | None = None
        mine: list[Placement] = []
        broken = sequence_problem(rows)
        if broken and problems is not None:
            problems.append(broken)
        for r in rows:
            v = r.values
            if current is None or v.get("RNE") in STARTS:
                current = Placement(child, v["DECOM"], v.get("PLACE") or "", v.get("URN"), v.get("LS") or "",
                                    v.get("PLACE_PROVIDER"), row=r.row, postcode=v.get("PL_POST"),
                                    authority=v.get("PL_LA"), file=r.file, held=broken is not None)
                mine.append(current)
            current.rows.append(r.where)
            current.end = v.get("DEC")
            if v.get("REASON_PLACE_CHANGE"):
                current.end_reason = ("ssda903-reason-placement-change", v["REASON_PLACE_CHANGE"])
            elif v.get("REC") and v["REC"] != "X1":
                current.end_reason = ("ssda903-reason-episode-ceased", v["REC"])
            else:
                current.end_reason = None
        out.extend(mine)
    return out


def sequence_problem(rows: list[Record], *, start: str = "DECOM", end: str = "DEC") -> Problem | None:
    """The first impossible step in one child's episodes sorted by start (the finding names that row), or
    None: an episode that ends before it starts, one that starts before the previous has ended, or one
    that starts while the previous is still open. Two episodes at once would be two placements at once."""
    previous: Record | None = None
    for r in rows:
        began, ended = r.values.get(start), r.values.get(end)
        if began and ended and ended < began:
            return Problem("impossible-episode", r.file, r.row, end, "the episode ends before it starts; nothing "
                           "about the child is sent until it is corrected in the case management system")
        if previous is not None:
            last_end = previous.values.get(end)
            if last_end is None or (began and last_end > began):
                how = "still open" if last_end is None else "not yet ended"
                return Problem("overlapping-episodes", r.file, r.row, start, f"the episode starts while the one at "
                               f"row {previous.row} is {how}, which would be two placements at once; nothing about "
                               "the child is sent until the episodes are corrected in the case management system")
        previous = r
    return None


def child_resource(local_id: str, la_code: str, birth_date: date, sex: str | None) -> dict:
    """The child as the standard's Patient, from the M/F/U sex that exports give."""
    return c.child(local_id, la_code, birth_date.isoformat(), _GENDER.get(sex or "U", "unknown"))


def children_of(headers: Iterable[Record], problems: list[Problem] | None = None) -> dict[str, ChildDetails]:
    """Each child of the Header table; Header rows that disagree about a child are a finding."""
    return child_facts(headers, {"DOB": "DOB", "SEX": "SEX", "UPN": "UPN"}, table_word="Header rows",
                       conflicts=problems)


@dataclass
class Planned:
    """A message to send, with the change-store key and digest to remember once it is queued.

    The message itself is a recipe until it is needed: a large run builds its messages in worker processes
    (`broker.workers`), so planning only decides what to send and who it is for."""

    key: str
    digest: str
    recipe: Callable[[], dict]  # builds the message; a module-level function with its arguments, so it can travel
    message_id: str
    event: str
    placement: Placement | None = None
    file: str = "built message"  # where the facts came from, for a problem if the message fails validation
    row: int | None = None
    rows: list[RowId] = field(default_factory=list)  # every row whose facts it carries: sent once it is queued

    @classmethod
    def built(cls, key: str, digest: str, message: dict, **where) -> Planned:
        """A message built already (few of them: signals, mapped rows), planned all the same."""
        return cls(key, digest, partial(_as_built, message), message["identifier"]["value"], event_of(message),
                   **where)

    @cached_property
    def message(self) -> dict:
        """The message, built here on first use (a dry run, a report's sample)."""
        return self.recipe()


def _as_built(message: dict) -> dict:
    return message


@dataclass
class Plan:
    """What to send, what was found, and the outcome of every row that is not in a message."""

    messages: list[Planned] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unchanged: int = 0  # messages not built again: their facts were sent before
    outcomes: list[tuple[list[RowId], str, str | None]] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  # children whose placement is held: their signals wait too

    def settle(self, rows: Iterable[RowId], outcome: str, reason: str | None = None) -> None:
        self.outcomes.append((list(rows), outcome, reason))

    def hold(self, rows: Iterable[RowId], problem: Problem) -> None:
        """Rows held back, with the finding that says why and what to do."""
        self.problems.append(problem)
        self.settle(rows, HELD_BACK)


class ChangeStore:
    """What was already sent (a digest of each placement fact, by key) and where each child was placed, so
    that later signals about a child (a CIN census, a mapped log) can name the setting."""

    def __init__(self, path: Path | str):
        self.db = sqlite_db.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, digest TEXT NOT NULL, "
                        "message_id TEXT NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS placement (child TEXT NOT NULL, start TEXT NOT NULL, "
                        "urn TEXT NOT NULL, end TEXT, PRIMARY KEY (child, start, urn))")
        self._known: dict[str, str] | None = None
        self._assumed: list[Placement] = []  # a dry run's placements, as if sent, for the signals after them

    def digest_of(self, key: str) -> str | None:
        if self._known is None:  # one read of the whole table: exports are planned in one pass
            self._known = dict(self.db.execute("SELECT key, digest FROM sent"))
        return self._known.get(key)

    def remember(self, planned: list[Planned]) -> None:
        """Record messages as sent (queued in the outbox), in one transaction."""
        with sqlite_db.transaction(self.db):
            self.db.executemany(
                "INSERT INTO sent (key, digest, message_id) VALUES (?,?,?) ON CONFLICT (key) DO UPDATE SET "
                "digest = excluded.digest, message_id = excluded.message_id",
                [(p.key, p.digest, p.message_id) for p in planned])
            self.db.executemany(
                "INSERT INTO placement VALUES (?,?,?,?) ON CONFLICT (child, start, urn) DO UPDATE SET "
                "end = excluded.end",
                [(p.child, p.start.isoformat(), p.urn, p.end.isoformat() if p.end else None)
                 for p in (item.placement for item in planned) if p is not None and p.urn])
        if self._known is not None:
            self._known.update((p.key, p.digest) for p in planned)

    def assume(self, planned: Iterable[Planned]) -> None:
        """A dry run's placements, taken as told for this run only (never written), so that the signals
        planned after them (missing episodes) show as they would be sent."""
        self._assumed.extend(item.placement for item in planned if item.placement is not None)

    def setting_of(self, child: str, on: date) -> str | None:
        """The URN where this authority last told the exchange the child lived on a day."""
        for p in sorted(self._assumed, key=lambda p: p.start, reverse=True):
            if p.child == child and p.urn and p.start <= on and (p.end is None or p.end >= on):
                return p.urn
        row = self.db.execute("SELECT urn FROM placement WHERE child = ? AND start <= ? AND (end IS NULL OR end >= ?) "
                              "ORDER BY start DESC LIMIT 1", (child, on.isoformat(), on.isoformat())).fetchone()
        return row[0] if row else None


def facts_digest(*parts: object) -> str:
    """What the change store compares to tell whether a fact changed since it was sent."""
    return hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()


@dataclass
class Locator:
    """Finds the setting of a placement in the directory (see the module docstring for the order)."""

    directory: Directory
    authorities: Authorities = field(default_factory=Authorities)

    def locate(self, p: Placement, sender: str) -> tuple[Setting | None, Problem | None, str | None]:
        """The setting when the exchange can route to it; otherwise None with either the reason the placement
        is not notifiable or a problem saying what to fix so that it can be sent (never neither: a placement
        that cannot be located is a finding, not a silent skip)."""
        named = self.authorities.find(p.authority)
        p.confidential = p.confidential or bool(named and named.confidential)
        setting = self.directory.setting(p.urn) if p.urn and p.urn != NO_URN else None
        postcode_note = ""
        if setting is None and p.postcode and not p.confidential:
            postcode = normalise_postcode(p.postcode)
            at = self.directory.settings_at(postcode) if postcode else []
            setting = at[0] if len(at) == 1 else None
            postcode_note = (" The placement postcode is not a full UK postcode." if postcode is None else
                             f" {len(at)} settings in the directory are registered at the placement postcode."
                             if len(at) > 1 else
                             " No setting in the directory is registered at the placement postcode.")
        host = named.participant if named else None
        if setting is not None:
            if host and host != setting.host_la:
                return setting, Problem("host-la-mismatch", p.file, p.row, p.columns[0],
                                        "the authority given for the placement is not the one the directory holds "
                                        "for its setting; the directory's was used: check the record"), None
            return setting, None, None
        if named and named.special in OUTSIDE_ENGLAND:
            return None, None, "outside-england"
        if host == sender:
            return None, None, "own-area"
        if p.urn == NO_URN:
            return None, None, "not-at-registered-setting"
        if p.urn:
            where = (f"the placement is in the area of {host}, but its setting is not in the directory, so the "
                     "exchange cannot route it" if host else
                     f"the setting is not in the directory and {p.columns[0]} is empty, so the exchange cannot "
                     "tell where the child lives or whose area it is")
            return None, Problem("setting-not-in-directory", p.file, p.row, p.columns[1],
                                 f"{where}; it is held: ask the operator to import the Ofsted provider list ('sgx "
                                 f"directory import-settings'), check the URN, or fill {p.columns[0]} (your own "
                                 "code when the setting is in your area); it will be sent on the run after"), None
        fix = ("a confidential placement is never located by its address: record the setting's Ofsted URN" if
               p.confidential else f"record the setting's Ofsted URN (XXXXXXX when it is not an Ofsted-registered "
               f"setting), correct the placement postcode, or fill {p.columns[0]}")
        return None, Problem("placement-not-located", p.file, p.row, p.columns[1],
                             "the placement has no URN and the exchange cannot tell where the child lives."
                             f"{postcode_note} It is held: {fix}; it will be sent on the run after"), None


def plan_messages(la_code: str, children: dict[str, ChildDetails], found: Iterable[Placement],
                  directory: Directory, store: ChangeStore, *, locator: Locator | None = None) -> Plan:
    """The messages to send for these placements, given what was sent before, and the outcome of every
    row of the placements and of the children's Header rows."""
    sender = f"la-{la_code}"
    locator = locator or Locator(directory)
    plan = Plan()
    for p in found:
        child = children.get(p.child)
        rows = [*p.rows, *(child.rows if child else [])]
        if p.held or (child is not None and child.conflict):  # the finding was given when the rows were read
            plan.settle(rows, HELD_BACK)
            plan.held.add(p.child)
            continue
        setting, problem, reason = locator.locate(p, sender)
        if reason:
            plan.settle(rows, NOT_NOTIFIABLE, reason)
            continue
        if setting is None:
            plan.hold(rows, problem)
            plan.held.add(p.child)
            continue
        if problem:
            plan.problems.append(problem)
        if setting.host_la == sender:
            plan.settle(rows, NOT_NOTIFIABLE, "own-area")
            continue
        p.urn = setting.urn
        if child is None or child.birth_date is None:
            plan.held.add(p.child)
        if child is None:
            plan.hold(rows, Problem("child-not-in-header", p.file, p.row, "CHILD", "the child has a placement but no "
                                    "row in the Header table; include the Header file in the run"))
            continue
        if child.birth_date is None:
            plan.hold(rows, Problem("missing-value", child.file, child.row, "DOB", "the child's date of birth is "
                                    "needed for placement notifications; record it"))
            continue
        facts = (p.child, p.start, p.place, p.urn, p.legal_status, p.provider, p.confidential)
        start_key = f"start|{p.child}|{p.start}|{p.urn}"
        known = store.digest_of(start_key)
        digest = facts_digest(*facts)
        if known != digest:
            event = "placement-started" if known is None else "placement-changed"
            message_id = message_id_for(sender, start_key, digest)
            recipe = _recipe(event, sender, la_code, p, child, setting.name, ended=False, message_id=message_id)
            plan.messages.append(Planned(start_key, digest, recipe, message_id, event, p, p.file, p.row, rows))
        else:
            plan.unchanged += 1
            plan.settle(rows, UNCHANGED)
        if p.end is not None:
            end_key = f"end|{p.child}|{p.start}|{p.urn}"
            end_digest = facts_digest(*facts, p.end, p.end_reason)
            if store.digest_of(end_key) != end_digest:
                if p.end_reason is None:
                    plan.hold(rows, Problem("missing-value", p.file, p.row, "REASON_PLACE_CHANGE",
                                            "an ended placement needs REASON_PLACE_CHANGE or REC; the end will be "
                                            "sent once it is recorded"))
                else:
                    message_id = message_id_for(sender, end_key, end_digest)
                    recipe = _recipe("placement-ended", sender, la_code, p, child, setting.name, ended=True,
                                     message_id=message_id)
                    plan.messages.append(Planned(end_key, end_digest, recipe, message_id, "placement-ended", p,
                                                 p.file, p.row, rows))
            else:
                plan.unchanged += 1
                plan.settle(rows, UNCHANGED)
    return plan


class PlacementFacts(NamedTuple):
    """What one placement message says, as plain values: the recipe a worker process builds it from (small to
    send, and nothing the message does not carry, such as the placement's postcode)."""

    event: str
    sender: str
    la_code: str
    message_id: str
    child: str
    birth_date: date
    sex: str | None
    legal_status: str
    start: date
    urn: str
    setting_name: str
    place: str
    provider: str | None
    end: date | None  # only for placement-ended
    end_reason: tuple[str, str] | None
    confidential: bool


def _recipe(event: str, sender: str, la_code: str, p: Placement, child: ChildDetails, setting_name: str, *,
            ended: bool, message_id: str) -> Callable[[], dict]:
    return partial(placement_message, PlacementFacts(
        event, sender, la_code, message_id, p.child, child.birth_date, child.sex, p.legal_status, p.start, p.urn,
        setting_name, p.place, p.provider, p.end if ended else None, p.end_reason if ended else None,
        p.confidential))


def placement_message(f: PlacementFacts) -> dict:
    labels = ["confidential-placement"] if f.confidential else []
    b = c.MessageBuilder(f.event, f.sender, security=labels, message_id=f.message_id)
    child_ref = b.add(child_resource(f.child, f.la_code, f.birth_date, f.sex))
    episode = b.add(c.looked_after_episode(child_ref, f.sender, f.legal_status, f.start.isoformat()))
    setting = b.add(c.setting(f.urn, f.setting_name))
    b.add(c.placement(child_ref, episode, setting, f.place, f.start.isoformat(), provider_type=f.provider,
                      end=f.end.isoformat() if f.end else None, end_reason=f.end_reason, security=labels),
          focus=True)
    return b.build()
