"""Replay a scenario on a simulated clock: one engine per host authority, a tick at every midnight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from broker.oversight import rules as published_rules
from broker.oversight.clocks import Alert
from broker.oversight.engine import Engine, Escalation
from broker.oversight.rules import RuleSet
from broker.oversight.scenario import Scenario
from broker.oversight.signals import Finding, Signal

THREE_MONTHS = timedelta(days=92)


@dataclass
class SettingResult:
    """What oversight did about one setting in a replay."""

    urn: str
    name: str
    host: str
    concerning: bool
    first_signal: datetime | None
    signals: list[tuple[datetime, str, str]] = field(default_factory=list)  # (at, kind, message id): the picture
    inspections: list[tuple[datetime, str]] = field(default_factory=list)  # (at, kind): every judgement, drawn
    escalations: list[Escalation] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    @property
    def first_escalation(self) -> datetime | None:
        return min((e.fired_at for e in self.escalations), default=None)

    @property
    def escalated_within_three_months(self) -> bool:
        first = self.first_escalation
        return first is not None and self.first_signal is not None and first - self.first_signal <= THREE_MONTHS


@dataclass
class ReplayResult:
    scenario: str
    title: str
    rules_version: str
    start: datetime
    end: datetime
    settings: dict[str, SettingResult]
    findings: list[Finding]
    signals: int

    @property
    def setting_years(self) -> float:
        return len(self.settings) * (self.end - self.start).days / 365.25

    def ordinary(self) -> list[SettingResult]:
        return [s for s in self.settings.values() if not s.concerning]

    def concerning(self) -> list[SettingResult]:
        return [s for s in self.settings.values() if s.concerning]

    def false_escalations_per_100_setting_years(self) -> float:
        ordinary = self.ordinary()
        if not ordinary:
            return 0.0
        years = len(ordinary) * (self.end - self.start).days / 365.25
        return 100 * sum(len(s.escalations) for s in ordinary) / years


def _midnights(after: datetime, upto: datetime):
    day = after.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while day <= upto:
        yield day
        day += timedelta(days=1)


def replay(scenario: Scenario, rules: RuleSet | None = None,
           timeline: list[tuple[datetime, Signal]] | None = None, *, keep_signals: bool = True,
           engine_factory=Engine) -> ReplayResult:
    """Run the timeline (the scenario's by default) through one engine per host authority, in arrival order.

    The clock is simulated: each signal is taken at the moment it arrives, and every midnight between arrivals
    the statutory clocks are ticked, so a missing report is raised at the first midnight after it fell due.
    """
    rules = rules or published_rules.published()
    engines = {la: engine_factory(rules, area, start=scenario.start) for la, area in scenario.areas.items()}
    host_of = scenario.host_of()
    results = {urn: SettingResult(urn, scenario.names.get(urn, urn), host_of[urn], urn in scenario.concerning, None)
               for urn in host_of}
    concern_kinds = {k for k, s in rules.signals.items() if s.concern}
    now = scenario.start
    timeline = scenario.timeline if timeline is None else timeline
    count = 0
    for arrives, signal in timeline:
        if arrives > now:
            for midnight in _midnights(now, arrives):
                for engine in engines.values():
                    engine.tick(midnight)
            now = arrives
        count += 1
        # A signal about a setting no host knows still goes to an engine (the first), which records the finding.
        engine = engines.get(host_of.get(signal.setting, ""), next(iter(engines.values())))
        engine.observe(signal, now)
        result = results.get(signal.setting)
        if result is not None and keep_signals and signal.kind.startswith("inspection-"):
            result.inspections.append((signal.at, signal.kind))
        if result is not None and signal.kind in concern_kinds:
            if result.first_signal is None or signal.at < result.first_signal:
                result.first_signal = signal.at
            if keep_signals:
                result.signals.append((signal.at, signal.kind, signal.message_id))
    for midnight in _midnights(now, scenario.end):
        for engine in engines.values():
            engine.tick(midnight)
    findings: list[Finding] = []
    for engine in engines.values():
        for escalation in engine.escalations:
            results[escalation.setting].escalations.append(escalation)
        for alert in engine.alerts:
            results[alert.setting].alerts.append(alert)
        findings += engine.findings
    return ReplayResult(scenario.name, scenario.title, rules.version, scenario.start, scenario.end, results,
                        findings, count)
