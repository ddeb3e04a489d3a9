"""Statutory clocks: working days on England's bank holidays, missing reports and late follow-ups alerted in time."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from broker.oversight import rules, scenario
from broker.oversight.clocks import months_between
from broker.oversight.engine import Area, Engine, SettingInfo
from broker.oversight.replay import replay
from broker.oversight.rules import published
from standard.errors import CalendarNotCovered
from standard.workdays import add_working_days, bank_holidays
from tests.unit.broker.oversight_helpers import HOME, PROVIDER, START, area, signal


@pytest.mark.parametrize(("start", "days", "expected"), [
    (date(2024, 3, 28), 1, date(2024, 4, 2)),    # Good Friday and Easter Monday
    (date(2026, 12, 24), 1, date(2026, 12, 29)),  # Christmas, and Boxing Day's substitute Monday
    (date(2022, 9, 16), 1, date(2022, 9, 20)),    # the State Funeral's bank holiday
    (date(2024, 6, 7), 1, date(2024, 6, 10)),     # a weekend
    (date(2024, 6, 8), 0, date(2024, 6, 10)),     # a Saturday is not a working day itself
])
def test_working_days_skip_weekends_and_the_published_bank_holidays(start, days, expected):
    assert add_working_days(start, days) == expected


def test_the_bank_holidays_are_england_and_wales_eight_a_year_or_more():
    by_year = {}
    for day in bank_holidays():
        by_year[day.year] = by_year.get(day.year, 0) + 1
    assert sorted(by_year) == list(range(2018, 2028)) and min(by_year.values()) == 8


def test_a_date_outside_the_years_covered_is_refused_saying_what_to_add():
    with pytest.raises(CalendarNotCovered, match="add that year's bank holidays"):
        add_working_days(date(2031, 1, 6), 1)


def _engine() -> Engine:
    return Engine(published(), area(), start=START)


def _tick_through(engine: Engine, until: datetime, every_days: int = 1) -> None:
    day = START
    while day <= until:
        engine.tick(day)
        day += timedelta(days=every_days)


def _reg44(month: int, day: int = 15):
    visit = datetime(2024, month, day, tzinfo=UTC)
    return signal("reg44-report", (visit - START).days + 3, sender=PROVIDER, occurred=visit)


def missing_report_delay(every_days: int) -> timedelta:
    """How long after the March report fell due (end of 10 April) its alert is raised, ticking every N days."""
    engine = _engine()
    for month in (1, 2, 4):
        report = _reg44(month)
        engine.observe(report, report.at)
    _tick_through(engine, datetime(2024, 4, 30, tzinfo=UTC), every_days)
    alerts = [a for a in engine.alerts if a.clock == "CLK-REG44" and a.setting == HOME]
    assert [a.detail for a in alerts] == ["no reg44-report for the period starting 2024-03-01"]
    assert alerts[0].due == datetime(2024, 4, 11, tzinfo=UTC)
    return alerts[0].raised_at - alerts[0].due


def test_a_missing_regulation_44_report_is_alerted_within_a_day_of_falling_due():
    assert missing_report_delay(1) < timedelta(days=1)


def test_a_clock_ticked_weekly_would_be_late():
    # The broken twin: the same engine ticked once a week misses the one-day target.
    assert missing_report_delay(7) >= timedelta(days=1)


def test_a_missing_regulation_45_review_is_alerted_and_a_review_in_time_is_not():
    engine = _engine()
    review = signal("reg45-review", 100, sender=PROVIDER, occurred=START + timedelta(days=100))
    engine.observe(review, review.at)
    _tick_through(engine, datetime(2024, 12, 31, tzinfo=UTC))
    reg45 = [a for a in engine.alerts if a.clock == "CLK-REG45"]
    # HOME's first half-year had its review; OTHER_HOME's did not: due 28 days after 30 June.
    assert [(a.setting, a.due.date()) for a in reg45] == [("SC100002", date(2024, 7, 29))]


def test_a_referral_the_host_lado_does_not_pass_on_within_two_working_days_is_alerted():
    engine = _engine()
    friday = 4  # 2024-01-05
    for case, notified in (("case-1", None), ("case-2", friday + 3)):
        referral = signal("allegation", friday, case=case, staff="s")
        engine.observe(referral, referral.at)
        if notified is not None:
            note = signal("allegation-notified", notified, case=case, sender="lado-371")
            engine.observe(note, note.at)
    _tick_through(engine, START + timedelta(days=20))
    lado = [a for a in engine.alerts if a.clock == "CLK-LADO"]
    assert [(a.detail, a.due.date()) for a in lado] == [
        ("no allegation-notified for case case-1 within 2 working day(s)", date(2024, 1, 10))]


def test_a_serious_incident_notified_late_is_alerted_when_it_arrives():
    engine = _engine()
    late = signal("incident-hospital", 10, sender=PROVIDER, occurred=START + timedelta(days=3))
    prompt = signal("incident-hospital", 10, sender=PROVIDER, occurred=START + timedelta(days=9.5))
    engine.observe(late, late.at)
    engine.observe(prompt, prompt.at)
    assert [(a.clock, a.message_id) for a in engine.alerts] == [("CLK-REG40", late.message_id)]


def test_every_missing_report_of_the_population_is_alerted_at_the_first_midnight_after_it_fell_due():
    loaded = scenario.load("population")
    result = replay(loaded, keep_signals=False)
    start = loaded.start.date()
    reported = {(s.setting, months_between(start, s.occurred.date())) for _, s in loaded.timeline
                if s.kind == "reg44-report"}
    months = months_between(start, loaded.end.date())
    expected = {(urn, m) for urn in loaded.settings for m in range(months - 1) if (urn, m) not in reported}
    alerts = [a for s in result.settings.values() for a in s.alerts if a.clock == "CLK-REG44"]
    assert len(expected) > 20
    assert {(a.setting, months_between(start, date.fromisoformat(a.detail.rsplit(" ", 1)[1]))) for a in alerts} \
        == expected
    assert all(a.raised_at - a.due < timedelta(days=1) for a in alerts)


def _reg44_alerted(rule_set) -> list[str]:
    """The settings alerted for a missing Regulation 44 report, one of each type, none sending reports."""
    base = area()
    settings = {urn: SettingInfo(urn, kind, PROVIDER, 4, kind) for urn, kind in (
        ("SC100011", "childrens-home"), ("SC100012", "secure-childrens-home"),
        ("SC100013", "residential-special-school"))}
    engine = Engine(rule_set, Area(base.host_la, base.host_lado, settings, base.participants), start=START)
    _tick_through(engine, datetime(2024, 3, 1, tzinfo=UTC))
    return sorted({a.setting for a in engine.alerts if a.clock == "CLK-REG44"})


def test_the_regulation_44_clock_runs_for_every_childrens_home_and_only_for_them():
    # Secure children's homes are children's homes (the 2015 Regulations apply); a residential special school not
    # registered as one is visited under its own standards.
    assert _reg44_alerted(published()) == ["SC100011", "SC100012"]


@pytest.mark.parametrize("types", [["childrens-home"], ["childrens-home", "secure-childrens-home",
                                                        "residential-special-school"]])
def test_a_twin_with_the_wrong_setting_types_alerts_the_wrong_settings(types):
    document = json.loads(rules.RULES_FILE.read_text(encoding="utf-8"))
    for clock in document["clocks"]:
        if clock["id"] == "CLK-REG44":
            clock["setting_types"] = types
    assert _reg44_alerted(rules.parse(document, "twin")) != ["SC100011", "SC100012"]
