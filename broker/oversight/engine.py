"""The oversight engine: counts the signals about each setting against the published rules, on an injected clock.

It keeps, per setting (and per provider, for pooled rules), the signals of the longest window in time order, and on
each new signal checks every rule that counts its kind over the windows that contain it. Input it cannot trust
(a duplicate id, an unknown setting or sender, a sender not entitled to report that kind) is kept as a finding and
never counted; a late signal is counted at its own date, so lateness neither raises nor hides an escalation.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from broker.oversight.clocks import Alert, ClockKeeper
from broker.oversight.rules import Rule, RuleSet
from broker.oversight.signals import EPOCH, Finding, Signal, day_number

PROVIDER_KINDS = frozenset({"incident-death", "incident-hospital", "incident-restraint", "incident-police",
                            "incident-missing", "incident-other", "reg44-report", "reg44-concern", "reg45-review"})
HOST_LADO_KINDS = frozenset({"allegation-substantiated", "allegation-notified"})
PLACING_KINDS = frozenset({"placement-started", "placement-ended", "placement-ended-after-concern"})
REGULATOR_KINDS = frozenset({"inspection-inadequate", "inspection-requires-improvement", "inspection-good",
                             "inspection-outstanding"})
REGULATORS = frozenset({"ofsted", "cqc"})  # the directory's participant kinds of regulators
LA_KIND = "la-childrens-services"
OUT_OF_ORDER_DAYS = 1.0  # a notice dated a day before the last one is ordinary (an incident notified next day)


@dataclass(frozen=True)
class SettingInfo:
    """What the host authority's node knows of a setting in its area (the directory and the register)."""

    urn: str
    type: str
    provider: str | None
    children: int
    name: str = ""


@dataclass(frozen=True)
class Area:
    """The host authority's view: its settings, and the directory's participants by id with their kind."""

    host_la: str
    host_lado: str
    settings: dict[str, SettingInfo]
    participants: dict[str, str]


@dataclass(frozen=True)
class Escalation:
    """A rule crossed for a setting: everything a person needs to check it by hand."""

    setting: str
    rule: str
    rule_title: str
    rules_version: str
    scope: str
    window_start: datetime
    window_end: datetime
    fired_at: datetime
    signal_ids: tuple[str, ...]
    total: float
    threshold: float
    sources: tuple[str, ...]
    children: int
    pooled_settings: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"setting": self.setting, "rule": self.rule, "rule_title": self.rule_title,
                "rules_version": self.rules_version, "scope": self.scope,
                "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
                "fired_at": self.fired_at.isoformat(), "signals": list(self.signal_ids), "total": self.total,
                "threshold": round(self.threshold, 2), "sources": list(self.sources), "children": self.children,
                "pooled_settings": list(self.pooled_settings)}


@dataclass(slots=True)
class _Entry:
    day: float
    kind: str
    weight: float
    source: str
    message_id: str
    setting: str
    staff: str | None

    def __lt__(self, other: _Entry) -> bool:
        return self.day < other.day


@dataclass
class _Track:
    """The counted signals of one setting or one provider, in date order."""

    days: list[float] = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)

    def add(self, entry: _Entry) -> None:
        if not self.days or entry.day >= self.days[-1]:
            self.days.append(entry.day)
            self.entries.append(entry)
        else:
            at = bisect_right(self.days, entry.day)
            self.days.insert(at, entry.day)
            self.entries.insert(at, entry)

    def between(self, after: float, upto: float) -> list[_Entry]:
        """Entries dated in (after, upto]."""
        return self.entries[bisect_right(self.days, after):bisect_right(self.days, upto)]


def _moment(day: float) -> datetime:
    return EPOCH + timedelta(days=day)


class Engine:
    """Setting-level oversight for one host authority.

    Example:
        >>> engine = Engine(rules.published(), area, start=datetime(2018, 1, 1, tzinfo=UTC))
        >>> engine.observe(signal, now=signal.at)   # returns the escalations it fired
        >>> engine.tick(now)                         # returns the statutory clock alerts now due
    """

    def __init__(self, rules: RuleSet, area: Area, *, start: datetime):
        self.rules = rules
        self.area = area
        self.start_day = day_number(start)
        self.findings: list[Finding] = []
        self.escalations: list[Escalation] = []
        self.alerts: list[Alert] = []
        self._seen: set[str] = set()
        self._cases: set[tuple[str, str]] = set()
        self._tracks: dict[str, _Track] = {}
        self._provider_tracks: dict[str, _Track] = {}
        self._latest: dict[str, float] = {}
        self._children = {urn: s.children for urn, s in area.settings.items()}
        self._placed: dict[str, set[str]] = {}
        self._last_end: dict[tuple[str, str], float] = {}
        self._by_provider: dict[str, list[str]] = {}
        for urn, setting in area.settings.items():
            if setting.provider:
                self._by_provider.setdefault(setting.provider, []).append(urn)
        self._rules_by_kind: dict[str, tuple[Rule, ...]] = {k: rules.rules_for(k) for k in rules.signals}
        self.clocks = ClockKeeper(rules.clocks)
        for urn, setting in area.settings.items():
            self.clocks.watch_setting(urn, setting.type, start.date())

    # --- input ---

    def _refuse(self, code: str, signal: Signal, detail: str) -> None:
        self.findings.append(Finding(code, signal.message_id, signal.setting, signal.at, detail))

    def _entitled(self, signal: Signal, setting: SettingInfo) -> str | None:
        """Why the sender may not report this signal about this setting, or None if it may."""
        kind = self.area.participants.get(signal.sender)
        if kind is None:
            return "unknown-sender"
        if signal.kind in PROVIDER_KINDS and signal.sender != setting.provider:
            return "sender-not-entitled"
        if signal.kind in HOST_LADO_KINDS and signal.sender != self.area.host_lado:
            return "sender-not-entitled"
        if signal.kind in PLACING_KINDS and kind != LA_KIND:
            return "sender-not-entitled"
        if signal.kind in REGULATOR_KINDS and kind not in REGULATORS:
            return "sender-not-entitled"
        return None

    def observe(self, signal: Signal, now: datetime) -> list[Escalation]:
        """Take one signal learned at `now`; return the escalations it fired (also kept in `escalations`)."""
        if signal.message_id in self._seen:
            self._refuse("duplicate", signal, "this message id was counted before")
            return []
        setting = self.area.settings.get(signal.setting)
        if setting is None:
            self._refuse("unknown-setting", signal, "not a setting of this host authority's directory")
            return []
        kind = self.rules.signals.get(signal.kind)
        if kind is None:
            self._refuse("unknown-kind", signal, f"kind {signal.kind!r} is not in rules {self.rules.version}")
            return []
        refusal = self._entitled(signal, setting)
        if refusal:
            self._refuse(refusal, signal, f"{signal.sender} may not report {signal.kind} about this setting")
            return []
        self._seen.add(signal.message_id)
        if signal.kind == "allegation" and signal.case:
            # Two referrals of one allegation (the provider's and the police's) are one allegation.
            if (signal.setting, signal.case) in self._cases:
                self._refuse("same-case", signal, "an allegation with this case reference was counted before")
                return []
            self._cases.add((signal.setting, signal.case))
        day = day_number(signal.at)
        if kind.weight > 0:  # placements and reports are dated by what they record, so they come late by nature
            latest = self._latest.get(signal.setting)
            if latest is not None and day < latest - OUT_OF_ORDER_DAYS:
                self._refuse("out-of-order", signal, f"dated {(latest - day):.0f} day(s) before the latest signal "
                                                     "about the setting; counted at its own date")
            self._latest[signal.setting] = max(day, latest or day)
        self._count_children(signal)
        self.alerts += self._since_start(self.clocks.record(signal.kind, signal.setting, signal.at, case=signal.case,
                                                            occurred=signal.occurred, message_id=signal.message_id))
        if kind.weight <= 0:
            return []
        entry = _Entry(day, signal.kind, kind.weight, kind.source, signal.message_id, signal.setting, signal.staff)
        self._tracks.setdefault(signal.setting, _Track()).add(entry)
        if setting.provider:
            self._provider_tracks.setdefault(setting.provider, _Track()).add(entry)
        fired = []
        for rule in self._rules_by_kind.get(signal.kind, ()):
            fired += self._check(rule, entry, setting, now)
        self.escalations += fired
        return fired

    def _count_children(self, signal: Signal) -> None:
        placed = self._placed.setdefault(signal.setting, set())
        if signal.kind == "placement-started" and signal.child and signal.child not in placed:
            placed.add(signal.child)
            self._children[signal.setting] += 1
        elif signal.kind in ("placement-ended", "placement-ended-after-concern"):
            self._children[signal.setting] = max(0, self._children[signal.setting] - 1)
            placed.discard(signal.child or "")

    def tick(self, now: datetime) -> list[Alert]:
        """Advance the clock to `now`: return the statutory clock alerts that fell due (also kept in `alerts`)."""
        due = self._since_start(self.clocks.due(now))
        self.alerts += due
        return due

    def _since_start(self, alerts: list[Alert]) -> list[Alert]:
        # Clocks run from when oversight started: what fell due before it is history, not an alert.
        return [a for a in alerts if day_number(a.due) >= self.start_day]

    # --- rules ---

    def children(self, setting: str) -> int:
        return max(1, self._children.get(setting, 1))

    def _check(self, rule: Rule, entry: _Entry, setting: SettingInfo, now: datetime) -> list[Escalation]:
        scope_key = setting.provider if rule.scope == "provider" else setting.urn
        if scope_key is None:
            return []
        track = self._provider_tracks[scope_key] if rule.scope == "provider" else self._tracks[setting.urn]
        # A late signal can complete any window that contains it: those ending at it or at a later signal.
        ends = [entry.day] + [e.day for e in track.between(entry.day, min(entry.day + rule.window_days,
                                                                           day_number(now)))]
        if rule.scope == "provider":
            return self._check_pooled(rule, entry, setting, now, scope_key, track, ends)
        last = self._last_end.get((scope_key, rule.id))
        for end in ends:
            if last is not None and end < last + rule.rearm_days:
                continue
            crossed = self._crossed(rule, track, end, scope_key, entry)
            if crossed:
                self._last_end[(scope_key, rule.id)] = end
                return self._escalations(rule, setting, end, now, *crossed)
        return []

    def _check_pooled(self, rule: Rule, entry: _Entry, setting: SettingInfo, now: datetime, provider: str,
                      track: _Track, ends: list[float]) -> list[Escalation]:
        # Quiet per setting, not per provider: a setting whose first signals come after the provider's pattern was
        # raised is escalated when a window that contains them still crosses, not a whole rearm period later.
        for end in ends:
            crossed = self._crossed(rule, track, end, provider, entry)
            if not crossed:
                continue
            due = set()
            for e in crossed[0]:
                last = self._last_end.get((e.setting, rule.id))
                if last is None or end >= last + rule.rearm_days:
                    due.add(e.setting)
            if due:
                for urn in due:
                    self._last_end[(urn, rule.id)] = end
                return self._escalations(rule, setting, end, now, *crossed, only=due)
        return []

    def _crossed(self, rule: Rule, track: _Track, end: float, scope_key: str,
                 entry: _Entry) -> tuple[list[_Entry], float, float, int] | None:
        """(the window's counted entries, total, threshold, children) if the rule is crossed at `end`."""
        window = [e for e in track.between(end - rule.window_days, end) if e.kind in rule.kinds]
        if rule.scope == "provider":
            children = sum(self.children(u) for u in self._by_provider.get(scope_key, ()))
        else:
            children = self.children(scope_key)
        if rule.type == "repeat-staff":
            if entry.staff is None:
                return None
            window = [e for e in window if e.staff == entry.staff]
            total = float(len(window))
            return (window, total, rule.min_weight, children) if total >= rule.min_weight else None
        total = sum(e.weight for e in window)
        if rule.type == "rise":
            if end - self.start_day < (rule.min_history_days or 0):
                return None
            before = track.between(end - rule.window_days - rule.baseline_days, end - rule.window_days)
            baseline = sum(e.weight for e in before if e.kind in rule.kinds)
            threshold = max(rule.min_weight, rule.factor * baseline * rule.window_days / rule.baseline_days)
        else:
            threshold = rule.threshold(children)
        if total < threshold:
            return None
        if rule.type == "triangulation" and len({e.source for e in window}) < (rule.min_sources or 0):
            return None
        return window, total, threshold, children

    def _escalations(self, rule: Rule, setting: SettingInfo, end: float, now: datetime, window: list[_Entry],
                     total: float, threshold: float, children: int,
                     only: set[str] | None = None) -> list[Escalation]:
        sources = tuple(sorted({e.source for e in window}))
        start, finish = _moment(end - rule.window_days), _moment(end)
        if rule.scope != "provider":
            return [Escalation(setting.urn, rule.id, rule.title, self.rules.version, rule.scope, start, finish, now,
                               tuple(e.message_id for e in window), total, threshold, sources, children)]
        by_setting = Counter(e.setting for e in window)
        pooled = tuple(sorted(by_setting))
        return [Escalation(urn, rule.id, rule.title, self.rules.version, rule.scope, start, finish, now,
                           tuple(e.message_id for e in window if e.setting == urn), total, threshold, sources,
                           children, pooled) for urn in pooled if only is None or urn in only]
