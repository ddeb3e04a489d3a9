"""The statutory clocks' due dates, on working days in England (`standard/workdays.py`). Beyond the years whose
bank holidays are shipped only weekends are skipped: a clock may then fall due a day early around a bank holiday,
which is better than a pass that stops (add the year's bank holidays to keep it exact)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from broker.oversight.rules import Clock
from standard.workdays import add_working_days, end_of


def month_start(day: date, months_after: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_after
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month


@dataclass(frozen=True, slots=True)
class Alert:
    """A statutory clock ran out: an expected item is missing or late."""

    clock: str
    setting: str
    due: datetime
    raised_at: datetime
    to: tuple[str, ...]
    detail: str
    message_id: str | None = None

    def as_dict(self) -> dict:
        return {"clock": self.clock, "setting": self.setting, "due": self.due.isoformat(),
                "raised_at": self.raised_at.isoformat(), "to": list(self.to), "detail": self.detail,
                "message_id": self.message_id}


class ClockKeeper:
    """Keeps every open statutory clock in one heap of due moments; `due(now)` yields those that ran out."""

    def __init__(self, clocks: tuple[Clock, ...]):
        self.reports = [c for c in clocks if c.type == "expected-report"]
        self.follow_ups = [c for c in clocks if c.type == "follow-up"]
        self.delays = [c for c in clocks if c.type == "notification-delay"]
        self._heap: list[tuple[datetime, int, str, str, object]] = []
        self._seq = 0
        self._start: dict[str, date] = {}
        self._satisfied: set[tuple[str, str, object]] = set()

    def _push(self, due: datetime, clock: str, setting: str, key: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, clock, setting, key))

    def watch_setting(self, setting: str, setting_type: str, since: date) -> None:
        """Start the expected-report clocks of a setting from the month after `since` (its first whole month)."""
        if setting in self._start:
            return
        first = month_start(since, 1) if since.day > 1 else since
        self._start[setting] = first
        for clock in self.reports:
            if setting_type in clock.setting_types:
                self._schedule_period(clock, setting, 0)

    def _schedule_period(self, clock: Clock, setting: str, period: int) -> None:
        period_end = month_start(self._start[setting], (period + 1) * clock.every)
        self._push(end_of(period_end + timedelta(days=clock.grace_days - 1)), clock.id, setting, period)

    def record(self, kind: str, setting: str, at: datetime, *, case: str | None = None,
               occurred: datetime | None = None, message_id: str | None = None) -> list[Alert]:
        """Note a signal that satisfies or starts a clock; return the alerts it raises at once (late notices)."""
        alerts = []
        start = self._start.get(setting)
        for clock in self.reports:
            # A report belongs to the period of the visit or review it records (occurred), sent up to grace_days later.
            dated = (occurred or at).date()
            if kind == clock.kind and start is not None and dated >= start:
                self._satisfied.add((clock.id, setting, months_between(start, dated) // clock.every))
        for clock in self.follow_ups:
            if kind == clock.after and case:
                due = end_of(add_working_days(at.date(), clock.working_days, strict=False))
                self._push(due, clock.id, setting, case)
            elif kind == clock.expect and case:
                self._satisfied.add((clock.id, setting, case))
        for clock in self.delays:
            if kind in clock.kinds and occurred is not None:
                due = end_of(add_working_days(occurred.date(), clock.working_days, strict=False))
                if at >= due:
                    alerts.append(Alert(clock.id, setting, due, at, clock.to,
                                        f"notified {(at - due).days + 1} day(s) after it was due", message_id))
        return alerts

    def due(self, now: datetime) -> list[Alert]:
        """Every clock that ran out at or before `now` and was not satisfied, as alerts raised at `now`."""
        alerts = []
        by_id = {c.id: c for c in (*self.reports, *self.follow_ups)}
        while self._heap and self._heap[0][0] <= now:
            due, _, clock_id, setting, key = heapq.heappop(self._heap)
            clock = by_id[clock_id]
            if clock.type == "expected-report":
                self._schedule_period(clock, setting, key + 1)  # the next period's clock starts whatever happened
            if (clock_id, setting, key) in self._satisfied:
                self._satisfied.discard((clock_id, setting, key))
                continue
            if clock.type == "expected-report":
                start = month_start(self._start[setting], key * clock.every)
                detail = f"no {clock.kind} for the period starting {start.isoformat()}"
            else:
                detail = f"no {clock.expect} for case {key} within {clock.working_days} working day(s)"
            alerts.append(Alert(clock_id, setting, due, now, clock.to, detail))
        return alerts
