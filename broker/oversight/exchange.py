"""Replay a scenario through the real exchange (embedded transport): every signal becomes a standard message,
signed by its sender's key, validated, routed, verified and stored by the host authority's nodes, and turned back
into signals from what those nodes received.

The host authority's oversight reads what its own nodes hold: the host LA's inbox (placements, Regulation 40, 44
and 45, concerns), its LADO's inbox (allegation referrals) and the notifications its LADO sent.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from broker.oversight.messages import signals_from
from broker.oversight.scenario import Scenario
from broker.oversight.signals import Signal
from broker.transport import INGRESS
from standard import compose as c
from standard.errors import OversightError
from standard.validator import HOT_PATH, Validator

INCIDENT_CODES = {"incident-death": ("40-1-death", []), "incident-hospital": ("40-4-e-other-serious-incident",
                                                                             ["health-related"]),
                  "incident-restraint": ("40-4-e-other-serious-incident", ["restraint"]),
                  "incident-police": ("40-4-b-police-incident", []),
                  "incident-missing": ("40-4-e-other-serious-incident", ["missing"]),
                  "incident-other": ("40-4-e-other-serious-incident", [])}
CONCERN_TYPES = {"complaint": "complaint", "whistleblowing": "whistleblowing", "hospital-referral": "hospital-referral",
                 "missing-episode": "missing-episode", "child-protection": "section-47-enquiry",
                 "concern-other": "other"}
ANSWERS = {"visit-announced": False, "children-spoken-to": 2, "wellbeing-promoted": "yes"}


def _stamp(moment: datetime) -> str:
    return c.timestamp(moment)


def _local_id(key: str) -> str:
    return "X" + hashlib.sha256(key.encode()).hexdigest()[:9].upper()


class MessageMaker:
    """Builds the standard message a signal stands for, with the signal's message id and dates."""

    def __init__(self, scenario: Scenario, now: datetime):
        self.scenario = scenario
        self.now = now
        self.settings = scenario.settings
        self.host_of = scenario.host_of()
        self.concerns = {s.message_id for _, s in scenario.timeline if s.kind == "reg44-concern"}

    def _builder(self, signal: Signal, event: str, **kw) -> c.MessageBuilder:
        return c.MessageBuilder(event, signal.sender, message_id=signal.message_id, moment=self.now, **kw)

    def _setting(self, b: c.MessageBuilder, urn: str) -> str:
        return b.add(c.setting(urn, self.scenario.names.get(urn, urn)))

    def _child(self, b: c.MessageBuilder, la_code: str, key: str) -> str:
        return b.add(c.child(_local_id(key), la_code, "2010-06-01", "unknown", pseudonym=None))

    def message(self, signal: Signal) -> dict | None:
        kind, at, urn = signal.kind, _stamp(signal.at), signal.setting
        setting = self.settings.get(urn)
        lado = self.scenario.areas[self.host_of[urn]].host_lado if urn in self.host_of else "lado-371"
        if kind.startswith("placement-"):
            la = signal.sender.removeprefix("la-")
            event = "placement-started" if kind == "placement-started" else "placement-ended"
            b = self._builder(signal, event)
            child = self._child(b, la, signal.child or signal.message_id)
            episode = b.add(c.looked_after_episode(child, signal.sender, "C2", "2015-01-01"))
            where = self._setting(b, urn)
            if event == "placement-started":
                b.add(c.placement(child, episode, where, "K2", at[:10]), focus=True)
            else:
                reason = "STAND" if kind == "placement-ended-after-concern" else "CARPL"
                b.add(c.placement(child, episode, where, "K2", "2015-01-01", end=at[:10],
                                  end_reason=("ssda903-reason-placement-change", reason)), focus=True)
            return b.build()
        if kind in INCIDENT_CODES:
            category, aspects = INCIDENT_CODES[kind]
            b = self._builder(signal, "serious-incident")
            child = self._child(b, "886", signal.message_id)
            where = self._setting(b, urn)
            incident = b.add(c.serious_incident(child, where, category, _stamp(signal.occurred or signal.at),
                                                aspects=aspects))
            b.add(c.incident_notification(incident, where, child, signal.sender, at, category), focus=True)
            return b.build()
        if kind == "reg44-concern":
            return None  # carried by its report's message (the report's id with #concern)
        if kind in ("reg44-report", "reg45-review"):
            reg44 = kind != "reg45-review"
            b = self._builder(signal, "independent-visitor-report" if reg44 else "quality-of-care-review")
            where = self._setting(b, urn)
            occurred = (signal.occurred or signal.at).date().isoformat()
            if reg44:
                answers = {"visit-date": occurred, **ANSWERS,
                           "children-safeguarded": "partly" if f"{signal.message_id}#concern" in self.concerns
                           else "yes"}
                b.add(c.report("reg44-visit-report", where, at[:10], signal.sender, answers), focus=True)
            else:
                answers = {"review-period-start": occurred, "review-period-end": occurred,
                           "quality-standards": "Reviewed.", "actions": "None."}
                b.add(c.report("reg45-quality-review", where, occurred, signal.sender, answers), focus=True)
            return b.build()
        if kind in ("allegation", "allegation-notified"):
            event = "allegation-referral" if kind == "allegation" else "allegation-notification"
            b = self._builder(signal, event, security=["allegation-detail"])
            where = self._setting(b, urn)
            role = b.add(c.staff_role(signal.staff or "unknown", setting.provider if setting and setting.provider
                                      else signal.sender, where))
            task = c.allegation_referral(signal.case or signal.message_id, role, where, lado, signal.sender, at,
                                         "physical-abuse")
            if event == "allegation-referral":
                b.add(task, focus=True)
            else:
                b.add(c.allegation_notification(b.add(task), where, signal.sender, at), focus=True)
            return b.build()
        if kind.startswith("inspection-"):
            b = self._builder(signal, "inspection-outcome")
            b.add(c.inspection_outcome(self._setting(b, urn), signal.sender, at, kind.removeprefix("inspection-")),
                  focus=True)
            return b.build()
        if kind in CONCERN_TYPES:
            b = self._builder(signal, "concern-notification")
            b.add(c.concern(CONCERN_TYPES[kind], self._setting(b, urn), signal.sender, at), focus=True)
            return b.build()
        return None


def _directory_parts(scenario: Scenario) -> tuple[list[d.Participant], list[d.Setting]]:
    reference = d.reference_directory()
    extra: dict[str, d.Participant] = {}
    settings = []
    for host, area in scenario.areas.items():
        for pid, kind in area.participants.items():
            if pid not in reference.participants and pid not in extra:
                extra[pid] = d.Participant(pid, kind, pid)
        for urn, s in area.settings.items():
            icb = next((p for p, k in area.participants.items() if k == "icb" and p in reference.participants),
                       None)
            settings.append(d.Setting(urn, s.name or urn, s.type, host, icb, ["ofsted"], s.provider))
    return list(extra.values()), settings


# The timeline is sent this many signals at a time: each sender queues its messages of the stretch, then they are
# published in the order they arrive in the scenario, so the router sees each placement before the reports that
# follow it (and routes those to the placing authority), as the exchange would have. A stretch is sent within a
# few seconds of being queued, so each message goes with the signature made when it was queued.
_SENT_TOGETHER = 10_000


def _send_in_order(stretch: list[tuple[datetime, Signal]], maker: MessageMaker, arrival: dict[str, datetime],
                   senders: set[str], net: ExchangeFolder, validator: Validator, transport) -> None:
    by_sender: dict[str, list[dict]] = {}
    order: dict[str, int] = {}
    for arrives, signal in stretch:
        message = maker.message(signal)
        if message is not None:
            by_sender.setdefault(signal.sender, []).append(message)
            arrival[signal.message_id] = arrives
            order[signal.message_id] = len(order)
    senders.update(by_sender)
    # Each outbox is open for one stretch only: a national year has over a thousand senders, and an open outbox
    # holds three files.
    outboxes = {sender: net.outbox(sender, validator=validator) for sender in by_sender}
    try:
        for sender, messages in by_sender.items():
            _, problems = outboxes[sender].add_many(messages)
            if problems:
                first = problems[0][1]
                raise OversightError(f"a {sender} message built for the replay broke the standard ({first}); "
                                     "this is a fault of the replay, please report it")
        # Every message queued before any is taken to send, so each signature is checked for freshness (and made
        # afresh if the queueing took over a minute) just before the stretch is published.
        queued = sorted(((order[envelope.message_id], sender, seq, envelope) for sender, outbox in outboxes.items()
                         for seq, envelope in outbox.waiting(len(by_sender[sender]))), key=lambda item: item[0])
        transport.publish_many([(INGRESS, envelope) for *_, envelope in queued])
        published: dict[str, list[int]] = {}
        for _, sender, seq, _ in queued:
            published.setdefault(sender, []).append(seq)
        for sender, seqs in published.items():
            outboxes[sender].mark_sent(seqs)
    finally:
        for outbox in outboxes.values():
            outbox.close()


# Below this many signals a replay runs in one process: forking would cost more than it saves.
PARALLEL_FROM = 5000


def received_timeline(scenario: Scenario, root: Path | None = None, *, now: datetime | None = None,
                      processes: int = 1) -> tuple[list[tuple[datetime, Signal]], dict]:
    """The scenario's signals as the host authorities' nodes received them from the exchange, each at the moment
    the scenario says it arrived; and counts of what was sent, refused and received.

    With `processes` over one (and no `root` to keep), the signals are shared out between that many processes by
    the host area of their setting, each process with an exchange of its own that holds the whole directory and
    every host authority's and LADO's node: a message goes where it would go in one exchange (to its setting's
    host area, and to the authorities of the children it names, wherever they are), and is read back by the same
    nodes."""
    now = now or datetime.now(UTC)
    if processes <= 1 or root is not None or len(scenario.timeline) < PARALLEL_FROM or len(scenario.areas) < 2:
        return _received(scenario, scenario.timeline, root, now)
    shards = _shards(scenario, processes)
    context = multiprocessing.get_context("fork")  # each process starts with the scenario already in memory
    with ProcessPoolExecutor(len(shards), mp_context=context, initializer=_adopt,
                             initargs=(scenario, now)) as pool:
        parts = list(pool.map(_received_shard, shards))
    timeline = sorted((item for part, _ in parts for item in part), key=_in_scenario_order(scenario))
    refusals: Counter = Counter()
    for _, part_counts in parts:
        refusals.update(part_counts["refusals"])
    counts = {"sent": sum(c["sent"] for _, c in parts), "received": sum(c["received"] for _, c in parts),
              "refused": sum(refusals.values()), "refusals": dict(refusals)}
    return timeline, counts


def _shards(scenario: Scenario, processes: int) -> list[tuple[list[str], list[int]]]:
    """The host areas in `processes` groups of about as many signals each, with the timeline positions of each
    group's signals (a message about a setting is sent in its host area's group); signals about a setting in no
    area (bad input) go with the first group."""
    host_of = scenario.host_of()
    positions: dict[str | None, list[int]] = {}
    for i, (_, signal) in enumerate(scenario.timeline):
        positions.setdefault(host_of.get(signal.setting), []).append(i)
    groups: list[tuple[list[str], list[int]]] = [([], []) for _ in range(processes)]
    for host in sorted(scenario.areas, key=lambda h: -len(positions.get(h, []))):
        hosts, taken = min(groups, key=lambda g: len(g[1]))
        hosts.append(host)
        taken.extend(positions.get(host, []))
    groups[0][1].extend(positions.get(None, []))
    return [(hosts, sorted(taken)) for hosts, taken in groups if hosts]


_shared: dict = {}  # the scenario and clock, in each forked process


def _adopt(scenario: Scenario, now: datetime) -> None:
    _shared.update(scenario=scenario, now=now)


def _received_shard(shard: tuple[list[str], list[int]]) -> tuple[list[tuple[datetime, Signal]], dict]:
    scenario, (_, taken) = _shared["scenario"], shard
    return _received(scenario, [scenario.timeline[i] for i in taken], None, _shared["now"])


def _received(scenario: Scenario, timeline: list[tuple[datetime, Signal]], root: Path | None,
              now: datetime) -> tuple[list[tuple[datetime, Signal]], dict]:
    """One exchange for the signals of `timeline`, read back at every host authority's and LADO's node."""
    with tempfile.TemporaryDirectory(prefix="sgx-oversight-") as tmp:
        folder = root or Path(tmp)
        participants, settings = _directory_parts(scenario)
        senders = sorted({s.sender for _, s in timeline})
        hosts = {h: a.host_lado for h, a in scenario.areas.items()}
        keyed = sorted(set(senders) | set(hosts) | set(hosts.values()) | {"router"})
        net = ExchangeFolder.create(folder, participants, settings, keyed=keyed)
        maker = MessageMaker(scenario, now)
        arrival: dict[str, datetime] = {}
        transport = net.transport()
        # One validator for every sender's outbox, on the router's hot path: the messages come from the standard's
        # composer, whose output the test suite checks with full validation (as the adapters do).
        validator = Validator(HOT_PATH, now=now)
        by_sender: set[str] = set()
        for start in range(0, len(timeline), _SENT_TOGETHER):
            _send_in_order(timeline[start:start + _SENT_TOGETHER], maker, arrival, by_sender, net, validator,
                           transport)
        router = net.router(transport)
        total = len(arrival)
        # Each refusal is counted below from the router's audit; one warning line each would bury the report.
        router_log = logging.getLogger("sgx.router")
        level = router_log.level
        router_log.setLevel(logging.ERROR)
        try:
            router.run(idle_timeout=0.0, max_messages=total)
        finally:
            router_log.setLevel(level)
        # An authority's own messages about its own settings have no one else to go to (no-recipients); it holds
        # them itself, in its outbox, and they are read from there below.
        refusals = Counter(r["reason"].split(":")[0] for r in router.audit.records() if r["decision"] == "rejected")
        received: dict[str, tuple[datetime, Signal]] = {}
        counts = {"sent": total, "received": 0, "refused": sum(refusals.values()), "refusals": dict(refusals)}
        for host, lado in hosts.items():
            for pid in (host, lado):
                node = net.node(pid, transport)
                node.run(idle_timeout=0.0)
                held = [(item.body, item.sender) for item in node.inbox() if item.event != "acknowledgement"]
                counts["received"] += len(held)
                # What the authority itself sent about its settings (the LADO's notifications, its own
                # placements) is not delivered back to it; it is in its outbox.
                if pid in by_sender:
                    own = net.outbox(pid)
                    held += [(body, pid) for (body,) in own.db.execute(
                        "SELECT body FROM outbox WHERE sent_at IS NOT NULL")]
                    own.close()
                for body, sender in held:
                    for signal in signals_from(orjson.loads(body), sender):
                        # One message held twice by the authority (its LA sent it, its LADO received it) is one.
                        received.setdefault(signal.message_id,
                                            (arrival.get(signal.message_id.split("#")[0], signal.at), signal))
        transport.close()
    return sorted(received.values(), key=_in_scenario_order(scenario)), counts


def _in_scenario_order(scenario: Scenario):
    """A sort key for received signals: when they arrived, and among those arriving at one moment (every dated
    report at midnight) the scenario's own order, so that one process and several give the very same list."""
    position = {signal.message_id: i for i, (_, signal) in enumerate(scenario.timeline)}
    return lambda item: (item[0], position.get(item[1].message_id, len(position)))
