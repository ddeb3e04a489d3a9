"""Signals about a child this authority has placed in another area (a Section 47 enquiry, a child protection
plan, a missing episode) become concern notifications to the setting's host LA and ICB, once each.

Where the child was on the day comes from the change store: the placements this authority has already told
the exchange about. A signal about a child placed in the authority's own area, or not placed, is not sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from adapters.base import Problem, message_id_for
from adapters.outcomes import HELD_BACK, NOT_NOTIFIABLE, UNCHANGED
from adapters.placements import ChangeStore, ChildDetails, Plan, Planned, child_resource, facts_digest
from broker.directory import Directory
from standard import compose as c


@dataclass(frozen=True)
class Signal:
    concern_type: str  # a code of the standard's concern-type system
    child: str
    on: date
    file: str
    row: int
    detail: str | None = None  # a code that makes the signal distinct (a category of abuse), never free text
    where: tuple[str, int] | None = None  # the row it came from, for its outcome (default: file and row)


def plan_concerns(la_code: str, signals: Iterable[Signal], children: dict[str, ChildDetails], directory: Directory,
                  store: ChangeStore, *, held: set[str] = frozenset()) -> Plan:
    """Concern notifications for the signals, given what was sent before. `held`: children whose placement in
    this run was held back with a finding; their signals wait with it (where they live is not yet known)."""
    sender = f"la-{la_code}"
    plan = Plan()
    for s in signals:
        child = children.get(s.child)
        rows = [s.where or (s.file, s.row), *(child.rows if child else [])]
        if s.child in held:
            plan.settle(rows[:1], HELD_BACK)
            continue
        urn = store.setting_of(s.child, s.on)
        setting = directory.setting(urn) if urn else None
        if setting is None or setting.host_la == sender:
            plan.settle(rows, NOT_NOTIFIABLE, "not-placed-elsewhere")
            continue
        if child is not None and child.conflict:  # the finding was given when the child's rows were read
            plan.settle(rows, HELD_BACK)
            continue
        if child is None or child.birth_date is None:
            plan.hold(rows, Problem("missing-value", s.file, s.row, "date of birth", "the child's date of birth is "
                                    "needed to notify; include the file that holds it and record it"))
            continue
        key = f"concern|{s.concern_type}|{s.child}|{s.on}"
        digest = facts_digest(s.on, urn, s.detail)
        if store.digest_of(key) == digest:
            plan.unchanged += 1
            plan.settle(rows, UNCHANGED)
            continue
        b = c.MessageBuilder("concern-notification", sender, message_id=message_id_for(sender, key, digest))
        child_ref = b.add(child_resource(s.child, la_code, child.birth_date, child.sex))
        setting_ref = b.add(c.setting(setting.urn, setting.name))
        b.add(c.concern(s.concern_type, setting_ref, sender, c.timestamp(), child_ref=child_ref), focus=True)
        plan.messages.append(Planned.built(key, digest, b.build(), file=s.file, row=s.row, rows=rows))
    return plan
