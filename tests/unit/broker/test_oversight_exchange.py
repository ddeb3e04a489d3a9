"""Oversight fed by the real exchange: the Hesley-shaped scenario as signed standard messages through the embedded
exchange gives the same signals, and the same escalations, as the replay on signals."""

from __future__ import annotations

import json
from pathlib import Path

from broker.oversight import scenario
from broker.oversight.messages import signals_from
from broker.oversight.replay import replay

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "messages"


def _facts(signal):
    return (signal.message_id, signal.kind, signal.setting, signal.at, signal.sender, signal.staff, signal.case,
            signal.occurred)


def test_the_hesley_shaped_scenario_through_the_exchange_escalates_exactly_as_on_signals():
    from broker.oversight.exchange import received_timeline

    loaded = scenario.load("hesley")
    timeline, counts = received_timeline(loaded)
    assert counts["refused"] == 0 and counts["received"] > 600
    assert sorted(_facts(s) for _, s in timeline) == sorted(_facts(s) for _, s in loaded.timeline)
    through = replay(loaded, timeline=timeline)
    direct = replay(loaded)

    def key(result):
        return sorted((e.setting, e.rule, e.window_end, e.signal_ids) for s in result.settings.values()
                      for e in s.escalations)

    assert key(through) == key(direct) and through.findings == []
    assert all(s.escalated_within_three_months for s in through.concerning())


def test_every_example_message_about_a_setting_gives_its_signal():
    expected = {
        "allegation-referral-physical": ["allegation"], "allegation-notification-cross-boundary":
        ["allegation-notified"], "allegation-outcome-substantiated": ["allegation-substantiated"],
        "concern-notification-whistleblowing": ["whistleblowing"],
        "concern-notification-missing-episode": ["missing-episode"],
        "independent-visitor-report-monthly": ["reg44-report", "reg44-concern"],
        "quality-of-care-review-six-monthly": ["reg45-review"],
        "placement-ended-allegation": ["placement-ended-after-concern"],
        "placement-started-childrens-home": ["placement-started"],
        "serious-incident-health-related": ["incident-hospital"], "serious-incident-police": ["incident-police"],
        "inspection-outcome-inadequate": ["inspection-inadequate"], "escalation-triangulation": [],
        "acknowledgement-accepted": [], "placement-changed-legal-status": [],
    }
    for name, kinds in expected.items():
        bundle = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
        signals = signals_from(bundle, "sender")
        assert [s.kind for s in signals] == kinds, name
        assert all(s.setting == "SC900001" and s.at.tzinfo is not None for s in signals), name


def test_a_signal_never_carries_a_childs_local_id_or_any_narrative():
    bundle = json.loads((EXAMPLES / "placement-started-childrens-home.json").read_text(encoding="utf-8"))
    local_ids = [i["value"] for e in bundle["entry"] for i in e["resource"].get("identifier", [])
                 if i.get("system", "").endswith("/Id/local-child-id")]
    (signal,) = signals_from(bundle, "la-886")
    assert local_ids and signal.child and all(local not in repr(signal) for local in local_ids)


def test_the_inbox_shows_an_inspection_judgement():
    from broker.inbox.facts import case_note

    bundle = json.loads((EXAMPLES / "inspection-outcome-inadequate.json").read_text(encoding="utf-8"))
    what = dict(case_note(bundle).what)
    assert what["Kind"] == "Inspection outcome" and what["Judgement"] == "Inadequate"



def test_a_refusal_by_the_exchange_is_counted_with_its_reason_and_the_senders_own_signal_is_kept():
    """An authority's placement in its own area has no one else to go to: the exchange refuses it (no-recipients)
    and the replay says so, while the authority, which holds it itself, still counts it as a signal."""
    from datetime import timedelta

    from broker.oversight.exchange import received_timeline
    from broker.oversight.scenario import Scenario
    from tests.unit.broker.oversight_helpers import START, area, signal

    own = signal("placement-started", 3, sender="la-371")  # the host placing a child in its own area
    placed = signal("placement-started", 5)  # another authority's child: routed to the host
    loaded = Scenario("own-area", "own area", START, START + timedelta(days=30), {"la-371": area()},
                      [(s.at, s) for s in (own, placed)])
    timeline, counts = received_timeline(loaded)
    assert counts["refused"] == 1 and counts["refusals"] == {"no-recipients": 1}
    assert {s.message_id for _, s in timeline} == {own.message_id, placed.message_id}


def _two_areas():
    """Two host areas, each placing children in the other's settings; an incident in one area about a child the
    other looks after (the replay's incidents name children of la-886), and a signal about a setting in neither."""
    from datetime import timedelta

    from broker.oversight.engine import LA_KIND, Area, SettingInfo
    from broker.oversight.scenario import Scenario
    from tests.unit.broker.oversight_helpers import HOME, OTHER_HOME, PROVIDER, START, area, signal

    kent = Area("la-886", "lado-886", {"SC200001": SettingInfo("SC200001", "childrens-home", PROVIDER, 4,
                                                                 "Third home")},
                {"la-886": LA_KIND, "lado-886": "lado", "la-371": LA_KIND, "icb-QF7": "icb", "ofsted": "ofsted",
                 PROVIDER: "provider"})
    signals = [signal("placement-started", 1, setting=HOME, sender="la-886"),
               signal("placement-started", 2, setting="SC200001", sender="la-371"),
               signal("placement-started", 3, setting=OTHER_HOME),
               signal("complaint", 4, setting="SC200001", sender="la-371"),
               signal("incident-police", 4.5, setting=HOME, sender=PROVIDER),  # to la-371's area and to la-886
               signal("complaint", 4.25, setting="SC200001", sender="la-371"),  # at the same moment...
               signal("complaint", 4.25, setting=HOME, sender="la-886"),  # ... as this one, in the other area
               signal("placement-started", 5, setting="SC200001", sender="la-886"),  # its own area: refused
               signal("placement-started", 6, setting="SC999999")]  # a setting in no area: refused
    return Scenario("two-areas", "two areas", START, START + timedelta(days=30),
                    {"la-371": area(), "la-886": kent}, [(s.at, s) for s in signals])


def test_a_replay_shared_out_between_processes_receives_exactly_what_one_exchange_does(monkeypatch):
    from broker.oversight import exchange

    loaded = _two_areas()
    alone = exchange.received_timeline(loaded)
    monkeypatch.setattr(exchange, "PARALLEL_FROM", 0)
    shared = exchange.received_timeline(loaded, processes=2)
    assert [_facts(s) for _, s in shared[0]] == [_facts(s) for _, s in alone[0]] and len(alone[0]) >= 4
    assert shared[1] == alone[1] and alone[1]["refused"] == 2


def test_the_same_check_catches_a_sharing_out_that_drops_signals_about_unknown_settings(monkeypatch):
    from broker.oversight import exchange

    loaded = _two_areas()
    alone = exchange.received_timeline(loaded)
    monkeypatch.setattr(exchange, "PARALLEL_FROM", 0)
    shards = exchange._shards

    def forgetful(scenario, processes):  # broken twin: what belongs to no area goes nowhere
        host_of = scenario.host_of()
        return [(hosts, [i for i in taken if scenario.timeline[i][1].setting in host_of])
                for hosts, taken in shards(scenario, processes)]

    monkeypatch.setattr(exchange, "_shards", forgetful)
    shared = exchange.received_timeline(loaded, processes=2)
    assert shared[1] != alone[1]
