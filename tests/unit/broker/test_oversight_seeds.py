"""The targets on seeds other than the shipped ones (a few, to stay fast; `bench/bench_oversight.py` sweeps 40).

Hesley-shaped seed 18 is the one whose first quarter is quietest among the tuning seeds (12 pooled signals in its
first three months): rules 1.1.0 escalated it after 101-135 days. Each target also runs against a broken twin of
the rules, which must miss it.
"""

from __future__ import annotations

import json

import pytest

from broker.oversight import rules, scenario
from broker.oversight.replay import replay
from broker.oversight.rules import RuleSet

HESLEY_SEEDS = (18, 19, 20)
POPULATION_SEEDS = (2, 3)  # under 1 here; bench/RESULTS.md names the seeds that are not


def _twin(change) -> RuleSet:
    document = json.loads(rules.RULES_FILE.read_text(encoding="utf-8"))
    change(document)
    return rules.parse(document, "twin")


def _late(seed: int, rule_set: RuleSet | None = None) -> list[str]:
    result = replay(scenario.load("hesley", seed=seed), rule_set, keep_signals=False)
    assert len(result.concerning()) == 3
    return [s.urn for s in result.concerning() if not s.escalated_within_three_months]


@pytest.mark.parametrize("seed", HESLEY_SEEDS)
def test_every_hesley_shaped_setting_of_another_seed_is_escalated_within_three_months(seed):
    assert _late(seed) == []


def _provider_rate_of_1_1_0(document: dict) -> None:
    # The twin with rules 1.1.0's pooled rate, 0.9 per child a year: too slow for a quiet first quarter.
    next(r for r in document["rules"] if r["id"] == "OVR-PROVIDER-HARM")["per_child_year"] = 0.9


def test_a_twin_with_the_old_pooled_rate_is_late_on_the_quiet_seed():
    assert _late(18, _twin(_provider_rate_of_1_1_0)) != []


def _false_rate(seed: int, rule_set: RuleSet | None = None) -> float:
    result = replay(scenario.load("population", seed=seed), rule_set, keep_signals=False)
    return result.false_escalations_per_100_setting_years()


@pytest.mark.parametrize("seed", POPULATION_SEEDS)
def test_ordinary_settings_of_another_seed_have_fewer_than_one_false_escalation_per_100_setting_years(seed):
    assert _false_rate(seed) < 1.0


def _over_eager(document: dict) -> None:
    # The twin that fires at the usual rate: every threshold at a third.
    for rule in document["rules"]:
        rule["min_weight"] = max(1, rule["min_weight"] / 3)
        if "per_child_year" in rule:
            rule["per_child_year"] /= 3


def test_an_over_eager_twin_fails_the_false_alarm_target_on_another_seed():
    assert _false_rate(POPULATION_SEEDS[0], _twin(_over_eager)) >= 1.0
