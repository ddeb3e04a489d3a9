"""Replaying the shipped scenarios: the Hesley-shaped settings are escalated early, ordinary ones rarely.

Each target is also run against a broken twin of the rules, which must miss it: a test that cannot fail proves
nothing.
"""

from __future__ import annotations

import copy
import json
from functools import cache

import pytest

from broker.oversight import rules, scenario
from broker.oversight.replay import replay
from broker.oversight.rules import RuleSet


@cache
def _hesley():
    return scenario.load("hesley")


@cache
def _population():
    return scenario.load("population")


def _twin(change) -> RuleSet:
    document = json.loads(rules.RULES_FILE.read_text(encoding="utf-8"))
    change(document)
    return rules.parse(document, "twin")


def late_or_missed(rule_set: RuleSet | None = None) -> list[str]:
    """The Hesley-shaped settings NOT escalated within three months of their first signal."""
    result = replay(_hesley(), rule_set)
    assert len(result.concerning()) == 3
    return [s.urn for s in result.concerning() if not s.escalated_within_three_months]


def false_rate(rule_set: RuleSet | None = None) -> float:
    return replay(_population(), rule_set, keep_signals=False).false_escalations_per_100_setting_years()


def test_every_hesley_shaped_setting_is_escalated_within_three_months_of_its_first_signal():
    assert late_or_missed() == []


def _without_thresholds(document: dict) -> None:
    # The twin whose thresholds are out of reach: nothing can fire.
    for rule in document["rules"]:
        rule["min_weight"] = 10_000


def _ignoring_the_lado(document: dict) -> None:
    # The twin whose rules do not read the LADO's referrals: one source in separate systems again.
    for rule in document["rules"]:
        kept = [k for k in rule["kinds"] if k not in ("allegation", "allegation-substantiated")]
        rule["kinds"] = kept or ["complaint"]


def _without_pooling(document: dict) -> None:
    # The twin that never looks across a provider's settings (Panel para 6.12).
    document["rules"] = [r for r in document["rules"] if r["scope"] != "provider"]


@pytest.mark.parametrize("broken", [_without_thresholds, _ignoring_the_lado, _without_pooling])
def test_a_broken_twin_of_the_rules_misses_a_hesley_shaped_setting(broken):
    assert late_or_missed(_twin(broken)) != []


def test_every_escalation_names_its_rule_window_and_signals_which_a_person_can_check():
    result = replay(_hesley())
    by_id = {s.message_id: s for _, s in _hesley().timeline}
    published = rules.published()
    checked = 0
    for setting in result.concerning():
        for e in setting.escalations:
            rule = next(r for r in published.rules if r.id == e.rule)
            assert e.rules_version == published.version
            assert (e.window_end - e.window_start).days == rule.window_days
            assert e.signal_ids, "an escalation without its signals cannot be checked"
            for message_id in e.signal_ids:
                signal = by_id[message_id]
                assert signal.setting == setting.urn and signal.kind in rule.kinds
                assert e.window_start < signal.at <= e.window_end
            assert e.total >= e.threshold and e.fired_at >= e.window_end
            checked += 1
    assert checked >= 3


def test_ordinary_settings_have_fewer_than_one_false_escalation_per_100_setting_years():
    result = replay(_population(), keep_signals=False)
    assert len(result.ordinary()) >= 200
    assert result.setting_years >= 600
    assert result.false_escalations_per_100_setting_years() < 1.0


def _over_eager(document: dict) -> None:
    # The twin that fires at the usual rate: every threshold at a third.
    for rule in document["rules"]:
        rule["min_weight"] = max(1, rule["min_weight"] / 3)
        if "per_child_year" in rule:
            rule["per_child_year"] /= 3


def test_an_over_eager_twin_of_the_rules_fails_the_false_alarm_target():
    assert false_rate(_twin(_over_eager)) >= 1.0


def test_the_population_has_settings_of_different_kinds_and_sizes():
    settings = _population().settings.values()
    sizes = {s.children for s in settings}
    kinds = {s.name.rsplit(" ", 1)[0] for s in settings}
    assert len(kinds) == 3 and min(sizes) <= 2 and max(sizes) >= 30


def test_the_same_seed_gives_the_same_timeline_and_another_seed_another():
    first = scenario.load("hesley")
    again = scenario.load("hesley")
    other = scenario.load("hesley", seed=99)
    assert [s.message_id for _, s in first.timeline] == [s.message_id for _, s in again.timeline]
    assert [s.at for _, s in first.timeline] != [s.at for _, s in other.timeline]


def test_the_hesley_shaped_scenario_carries_the_panels_counts():
    kinds = [s.kind for _, s in _hesley().timeline]
    incidents = sum(k.startswith("incident-") for k in kinds)
    assert (kinds.count("allegation"), incidents, kinds.count("hospital-referral"), kinds.count("complaint"),
            kinds.count("whistleblowing")) == (232, 108, 61, 31, 20)


def test_a_copy_of_the_scenario_is_not_changed_by_replaying_it():
    before = copy.deepcopy(_hesley().timeline)
    replay(_hesley())
    assert _hesley().timeline == before
