"""Bad input never raises or suppresses an escalation on its own; it is kept as findings.

Duplicates, signals out of order, about unknown settings, or from senders not entitled to report on the setting.
Each check that bad input cannot raise an escalation also runs against a broken twin of the engine, which must
raise one.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from broker.oversight import scenario
from broker.oversight.engine import Engine, SettingInfo
from broker.oversight.replay import replay
from broker.oversight.rules import published
from broker.oversight.signals import day_number
from tests.unit.broker.oversight_helpers import HOME, OTHER_PROVIDER, PROVIDER, START, area, signal


def run(signals, engine_class=Engine, arrivals=None):
    """Feed signals in the order given (each arriving at its own date, or at `arrivals`); return the engine."""
    engine = engine_class(published(), area(), start=START)
    for i, s in enumerate(signals):
        engine.observe(s, arrivals[i] if arrivals else s.at)
    return engine


class _CountsEveryCopy(Engine):
    def observe(self, signal, now):
        self._seen.discard(signal.message_id)
        return super().observe(signal, now)


class _DropsLateSignals(Engine):
    def observe(self, signal, now):
        latest = self._latest.get(signal.setting)
        if latest is not None and day_number(signal.at) < latest - 1:
            return []
        return super().observe(signal, now)


class _AdoptsUnknownSettings(Engine):
    def observe(self, signal, now):
        if signal.setting not in self.area.settings:
            self.area.settings[signal.setting] = SettingInfo(signal.setting, "childrens-home", None, 1)
            self._children[signal.setting] = 1
        return super().observe(signal, now)


class _TrustsEverySender(Engine):
    def _entitled(self, signal, setting):
        return None


def _allegations(days, **kw):
    return [signal("allegation", d, staff=f"staff-{i}", **kw) for i, d in enumerate(days)]


def test_duplicates_are_counted_once_and_never_raise_an_escalation():
    originals = _allegations([10, 20, 30, 40])
    copies = [s for s in originals for _ in range(5)]
    engine = run(copies)
    assert engine.escalations == []
    assert [f.code for f in engine.findings] == ["duplicate"] * 16
    assert run(copies, _CountsEveryCopy).escalations != []


class _CountsEveryReferral(Engine):
    def observe(self, signal, now):
        self._cases.clear()
        return super().observe(signal, now)


def test_several_referrals_of_one_allegation_count_once_and_never_raise_an_escalation():
    referrals = [signal("allegation", day, staff="staff-1", case=f"case-{day // 10}") for day in range(10, 40, 2)]
    engine = run(referrals)
    assert engine.escalations == []
    assert [f.code for f in engine.findings].count("same-case") == len(referrals) - 3
    assert run(referrals, _CountsEveryReferral).escalations != []


def test_a_signal_of_a_kind_the_rules_do_not_know_is_a_finding():
    engine = run([signal("gossip", day) for day in range(1, 40)])
    assert engine.escalations == [] and {f.code for f in engine.findings} == {"unknown-kind"}


def test_a_late_signal_is_counted_at_its_own_date_so_it_can_complete_a_window():
    on_time = _allegations([10, 20, 40, 50, 60])
    late = _allegations([30])[0]
    signals = [*on_time, late]
    arrivals = [s.at for s in on_time] + [START + timedelta(days=61)]
    engine = run(signals, arrivals=arrivals)
    assert [f.code for f in engine.findings] == ["out-of-order"]
    assert [e.rule for e in engine.escalations] == ["OVR-ALLEGATIONS"]
    assert late.message_id in engine.escalations[0].signal_ids
    assert run(signals, _DropsLateSignals, arrivals=arrivals).escalations == []


def test_a_late_signal_alone_never_raises_an_escalation():
    on_time = _allegations([200, 210, 220, 230, 240])
    late = _allegations([10])[0]
    engine = run([*on_time, late])
    assert engine.escalations == []
    assert [f.code for f in engine.findings] == ["out-of-order"]


def test_signals_about_unknown_settings_are_findings_and_never_raise_an_escalation():
    signals = _allegations(range(1, 41), setting="SC999999")
    engine = run(signals)
    assert engine.escalations == [] and len(engine.findings) == 40
    assert {f.code for f in engine.findings} == {"unknown-setting"}
    assert run(signals, _AdoptsUnknownSettings).escalations != []


@pytest.mark.parametrize(("kind", "sender", "code"), [
    ("incident-restraint", OTHER_PROVIDER, "sender-not-entitled"),  # another provider's Reg 40 about this home
    ("incident-police", "la-886", "sender-not-entitled"),            # a placing authority is not the provider
    ("allegation-substantiated", "lado-886", "sender-not-entitled"),  # a LADO, but not the host's
    ("whistleblowing", "stranger", "unknown-sender"),                 # not a participant at all
])
def test_signals_from_senders_not_entitled_are_findings_and_never_raise_an_escalation(kind, sender, code):
    signals = [signal(kind, day, sender=sender) for day in range(1, 61, 2)]
    engine = run(signals)
    assert engine.escalations == []
    assert {f.code for f in engine.findings} == {code}
    assert run(signals, _TrustsEverySender).escalations != []


def test_only_a_regulator_may_report_an_inspection_judgement():
    from_la = run([signal("inspection-inadequate", 5, sender="la-886")])
    from_ofsted = run([signal("inspection-inadequate", 5, sender="ofsted")])
    assert [f.code for f in from_la.findings] == ["sender-not-entitled"] and HOME not in from_la._tracks
    assert from_ofsted.findings == [] and len(from_ofsted._tracks[HOME].entries) == 1
    trusting = run([signal("inspection-inadequate", 5, sender="la-886")], _TrustsEverySender)
    assert len(trusting._tracks[HOME].entries) == 1  # the twin that trusts every sender counts it


def test_the_provider_itself_is_entitled_to_report_its_own_incidents():
    engine = run([signal("incident-restraint", day, sender=PROVIDER) for day in range(1, 61, 2)])
    assert engine.findings == [] and [e.rule for e in engine.escalations] == ["OVR-INCIDENTS"]


def _key(result):
    return sorted((e.setting, e.rule) for s in result.settings.values() for e in s.escalations)


def test_bad_input_mixed_into_the_hesley_shaped_timeline_neither_raises_nor_suppresses_anything():
    clean = scenario.load("hesley")
    rng = random.Random(5)  # noqa: S311 - a repeatable test, not a secret
    noisy = list(clean.timeline)
    for arrives, s in rng.sample(clean.timeline, 200):
        noisy.append((arrives + timedelta(days=rng.uniform(0, 5)), s))  # duplicates
    for arrives, s in rng.sample(clean.timeline, 100):
        noisy.append((arrives, s.__class__(s.message_id + "-x", s.kind, "SC999999", s.at, s.sender)))  # unknown
        noisy.append((arrives, s.__class__(s.message_id + "-y", "incident-other", s.setting, s.at, "la-886")))
        noisy.append((arrives, s.__class__(s.message_id + "-z", "complaint", s.setting, s.at, "stranger")))
    noisy.sort(key=lambda item: item[0])
    result = replay(clean, timeline=noisy)
    assert _key(result) == _key(replay(clean))
    assert {f.code for f in result.findings} == {"duplicate", "unknown-setting", "sender-not-entitled",
                                                  "unknown-sender"}


def test_signals_arriving_late_change_when_an_escalation_fires_but_not_whether():
    clean = scenario.load("hesley")
    rng = random.Random(6)  # noqa: S311 - a repeatable test, not a secret
    delayed = sorted(((arrives + timedelta(days=rng.uniform(1, 20)) if rng.random() < 0.3 else arrives, s)
                      for arrives, s in clean.timeline), key=lambda item: item[0])
    result = replay(clean, timeline=delayed)
    assert {f.code for f in result.findings} == {"out-of-order"}
    assert {(st, rule) for st, rule in _key(result)} == {(st, rule) for st, rule in _key(replay(clean))}
    assert all(s.escalations for s in result.concerning())
    dropped = replay(clean, timeline=delayed, engine_factory=_DropsLateSignals)
    assert {(st, rule) for st, rule in _key(dropped)} != {(st, rule) for st, rule in _key(replay(clean))}

