"""Working days in England: weekdays that are not bank holidays (England and Wales, shipped as data with its
source in standard/source/PROVENANCE.md). The standard's deadlines that the law or guidance sets in working days
(an acknowledgement within one working day, a LADO's initial consideration) are counted with these."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

import orjson

from standard.artefacts import ROOT
from standard.errors import CalendarNotCovered

BANK_HOLIDAYS_FILE = ROOT / "source" / "reference" / "bank-holidays-england-and-wales.json"


@cache
def _document() -> dict:
    return orjson.loads(BANK_HOLIDAYS_FILE.read_bytes())


@cache
def bank_holidays() -> frozenset[date]:
    """England and Wales bank holidays, from the shipped data (its years are in the file's `covers`)."""
    return frozenset(date.fromisoformat(e["date"]) for e in _document()["events"])


def covered_years() -> tuple[int, int]:
    covers = _document()["covers"]
    return covers["from"], covers["to"]


def is_working_day(day: date, *, strict: bool = True) -> bool:
    """A weekday that is not a bank holiday. Outside the years the data covers, `strict` refuses (a statutory
    clock must not guess); otherwise only weekends count (a deadline shown to a person, a day out at most)."""
    first, last = covered_years()
    if not first <= day.year <= last:
        if strict:
            raise CalendarNotCovered(f"{BANK_HOLIDAYS_FILE.name} covers {first}-{last}, not {day.year}; add that "
                                     "year's bank holidays from GOV.UK (see the file's source)")
        return day.weekday() < 5
    return day.weekday() < 5 and day not in bank_holidays()


def add_working_days(start: date, count: int, *, strict: bool = True) -> date:
    """The date `count` working days after `start` (0: start itself if a working day, else the next one)."""
    day = start
    while not is_working_day(day, strict=strict):
        day += timedelta(days=1)
    return working_days_after(day, count, strict=strict)


def working_days_after(day: date, count: int, *, strict: bool = True) -> date:
    """The `count`-th working day after `day` (day itself not counted, whatever it is): a message delivered on a
    Friday, a Saturday or a Sunday and due within one working day is due by the end of Monday."""
    for _ in range(count):
        day += timedelta(days=1)
        while not is_working_day(day, strict=strict):
            day += timedelta(days=1)
    return day


def end_of(day: date) -> datetime:
    """The first moment after `day` ends (UTC): an item due on `day` is overdue from then."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
