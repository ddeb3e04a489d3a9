"""A provider-pooled rule is quiet per setting: a setting whose first signals come after the provider's pattern was
raised is escalated as soon as a window containing them still crosses, not a whole rearm period later.

The check also runs against a broken twin that is quiet per provider, which must miss it.
"""

from __future__ import annotations

from broker.oversight.engine import Area, Engine, SettingInfo
from broker.oversight.rules import published
from tests.unit.broker.oversight_helpers import HOME, PROVIDER, START, area, signal

SECOND_HOME = "SC100003"


def _one_provider_two_homes() -> Area:
    base = area()
    settings = {HOME: base.settings[HOME],
                SECOND_HOME: SettingInfo(SECOND_HOME, "childrens-home", PROVIDER, 4, "Second home")}
    return Area(base.host_la, base.host_lado, settings, base.participants)


class _QuietPerProvider(Engine):
    """The broken twin: after a pooled escalation the whole provider is quiet for the rearm period."""

    def _check_pooled(self, rule, entry, setting, now, provider, track, ends):
        last = self._last_end.get((provider, rule.id))
        for end in ends:
            if last is not None and end < last + rule.rearm_days:
                continue
            crossed = self._crossed(rule, track, end, provider, entry)
            if crossed:
                self._last_end[(provider, rule.id)] = end
                return self._escalations(rule, setting, end, now, *crossed)
        return []


def _second_home_escalated_by_day(engine_class) -> float | None:
    engine = engine_class(published(), _one_provider_two_homes(), start=START)
    # Thirteen allegations at the first home in a month cross the pooled rule for it alone ...
    for i in range(13):
        s = signal("allegation", 2 + 2 * i, staff=f"staff-{i}", case=f"case-{i}")
        engine.observe(s, s.at)
    # ... then the second home's first allegations, three weeks later, inside the same 91-day window.
    for i in range(3):
        s = signal("allegation", 50 + i, setting=SECOND_HOME, staff=f"other-{i}", case=f"later-{i}")
        engine.observe(s, s.at)
    fired = [e for e in engine.escalations if e.setting == SECOND_HOME and e.rule == "OVR-PROVIDER-HARM"]
    return (fired[0].fired_at - START).days if fired else None


def test_a_providers_setting_with_later_first_signals_is_escalated_while_the_pattern_lasts():
    assert _second_home_escalated_by_day(Engine) == 50


def test_a_twin_quiet_per_provider_misses_the_later_setting():
    assert _second_home_escalated_by_day(_QuietPerProvider) is None
