"""Inspection outcomes: a poor judgement counts as a signal; a good or outstanding one never resets or quiets a rule.

The Hesley settings were judged good or outstanding while the abuse went on (Panel 2023), so "good" must not
suppress an escalation. Each check also runs against a broken twin, which must fail it: an engine reassured by a
good judgement (it forgets what it counted), and rules that give an inadequate judgement no weight.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from functools import cache

from broker.oversight import rules, scenario
from broker.oversight.engine import Engine
from broker.oversight.replay import replay
from broker.oversight.signals import Signal
from tests.unit.broker.oversight_helpers import START, area, signal

REASSURING = ("inspection-good", "inspection-outstanding")


@cache
def _hesley():
    return scenario.load("hesley")


class _ReassuredByAGoodJudgement(Engine):
    """The broken twin: a good or outstanding judgement wipes the setting's counted signals (a clean bill)."""

    def observe(self, signal, now):
        if signal.kind in REASSURING and signal.setting in self.area.settings:
            self._tracks.pop(signal.setting, None)
            for track in self._provider_tracks.values():
                kept = [(d, e) for d, e in zip(track.days, track.entries, strict=True) if e.setting != signal.setting]
                track.days[:] = [d for d, _ in kept]
                track.entries[:] = [e for _, e in kept]
        return super().observe(signal, now)


def _with_good_judgements():
    """The Hesley-shaped timeline with a good judgement of every setting published ten days before the first
    escalation, and an outstanding one a month later: right in the build-up that must be escalated."""
    plain = replay(_hesley(), keep_signals=False)
    first = min(s.first_escalation for s in plain.concerning())
    extra = []
    for n, urn in enumerate(sorted(_hesley().concerning)):
        for kind, at in (("inspection-good", first - timedelta(days=10)),
                         ("inspection-outstanding", first + timedelta(days=20))):
            extra.append((at, Signal(f"urn:uuid:00000000-0000-4000-8000-{n:06d}{len(extra):06d}", kind, urn, at,
                                     "ofsted")))
    timeline = sorted(_hesley().timeline + extra, key=lambda item: item[0])
    return plain, timeline


def _escalations(result):
    return sorted((e.setting, e.rule, e.window_end) for s in result.settings.values() for e in s.escalations)


def test_a_good_judgement_neither_suppresses_nor_delays_a_hesley_shaped_escalation():
    plain, timeline = _with_good_judgements()
    judged = replay(_hesley(), timeline=timeline, keep_signals=False)
    assert all(s.escalated_within_three_months for s in judged.concerning())
    assert _escalations(judged) == _escalations(plain)
    assert not [f for f in judged.findings if f.message_id.startswith("urn:uuid:00000000")]


def test_a_twin_reassured_by_a_good_judgement_misses_a_hesley_shaped_setting():
    _, timeline = _with_good_judgements()
    twin = replay(_hesley(), timeline=timeline, keep_signals=False, engine_factory=_ReassuredByAGoodJudgement)
    assert not all(s.escalated_within_three_months for s in twin.concerning())


def _triangulated(rule_set) -> list[str]:
    """Five allegations, three complaints and one inadequate judgement in a month: three sources, and the
    threshold, only with it."""
    engine = Engine(rule_set, area(), start=START)
    signals = [signal("allegation", 3 + i, staff=f"staff-{i}", case=f"case-{i}") for i in range(5)]
    signals += [signal("complaint", 10 + i) for i in range(3)]
    signals.append(signal("inspection-inadequate", 20, sender="ofsted"))
    for s in signals:
        engine.observe(s, s.at)
    return [e.rule for e in engine.escalations]


def test_an_inadequate_judgement_counts_as_a_signal_from_a_source_of_its_own():
    assert "OVR-SOURCES" in _triangulated(rules.published())


def test_a_twin_giving_an_inadequate_judgement_no_weight_does_not_escalate():
    document = json.loads(rules.RULES_FILE.read_text(encoding="utf-8"))
    for kind in document["signals"]:
        if kind["kind"] == "inspection-inadequate":
            kind["weight"] = 0.0
    assert "OVR-SOURCES" not in _triangulated(rules.parse(document, "twin"))


def test_the_shipped_scenarios_carry_inspections_at_realistic_rates():
    population = scenario.load("population")
    judged = Counter(s.kind for _, s in population.timeline if s.kind.startswith("inspection-"))
    per_setting = Counter(s.setting for _, s in population.timeline if s.kind.startswith("inspection-"))
    total = sum(judged.values())
    # A full inspection every inspection year (three years: two to four each), most good or outstanding.
    assert min(per_setting.values()) >= 2 and len(per_setting) == len(population.settings)
    assert 0.75 <= (judged["inspection-good"] + judged["inspection-outstanding"]) / total <= 0.9
    assert judged["inspection-inadequate"] > 0 and judged["inspection-requires-improvement"] > 0
    hesley = Counter(s.kind for _, s in _hesley().timeline if s.kind.startswith("inspection-"))
    assert set(hesley) <= set(REASSURING) and sum(hesley.values()) >= 3 * 3
