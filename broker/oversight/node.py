"""Oversight at the host authority's node: read what its nodes hold, decide on the published rules, and send each
new escalation, and each statutory clock alert, as a signed standard message through the exchange.

It reads only the authority's own stores: the host LA's inbox and outbox, and its LADO's (allegation referrals
reach the LADO; the LADO's notifications and the authority's own placements are in their outboxes). Each pass
recomputes from everything held (a year of a large authority's messages takes well under a second), so a restart
loses nothing; an escalation's message id comes from its setting, rule and window, so it is sent once however
often the pass runs. What oversight decided is kept in `oversight/<participant>.db`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker import db as sqlite_db
from broker import directory as d
from broker.oversight.clocks import Alert
from broker.oversight.engine import Area, Engine, Escalation, SettingInfo
from broker.oversight.messages import signals_from
from broker.oversight.rules import Clock, RuleSet
from broker.oversight.signals import Finding, Signal
from standard import compose as c
from standard.errors import OversightError

NAMESPACE = uuid.UUID("0f4c2a57-93d1-5b8e-8f3e-6a1d2c9b7e44")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS started (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS escalations (message_id TEXT PRIMARY KEY, setting TEXT NOT NULL, rule TEXT NOT NULL,
    window_end TEXT NOT NULL, fired_at TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (clock TEXT NOT NULL, setting TEXT NOT NULL, due TEXT NOT NULL, detail TEXT NOT NULL,
    raised_at TEXT NOT NULL, PRIMARY KEY (clock, setting, due, detail));
"""


@dataclass
class Pass:
    """What one pass decided: escalations and alerts new since the last pass, and the findings."""

    escalations: list[tuple[str, Escalation]] = field(default_factory=list)  # (message id, escalation)
    alerts: list[Alert] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    signals: int = 0


def area_of(directory: d.Directory, host_la: str) -> Area:
    """The host authority's settings (children counted from placement messages) and the directory's participants."""
    if host_la not in directory.participants or directory.participants[host_la].kind != d.LA:
        raise OversightError(f"{host_la!r} is not a local authority of the directory; oversight runs at a host "
                             "local authority's node (for example --participant la-371)")
    settings = {urn: SettingInfo(urn, s.type, s.provider, 0, s.name)
                for urn, s in directory.settings.items() if s.host_la == host_la}
    lado = directory.lado_of(host_la) or ""
    return Area(host_la, lado, settings, {pid: p.kind for pid, p in directory.participants.items()})


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def held_signals(root: Path, participants: list[str]) -> list[tuple[datetime, Signal]]:
    """Every signal in the participants' inboxes (at when received) and outboxes (at when sent), once each."""
    held: dict[str, tuple[datetime, Signal]] = {}
    for pid in participants:
        for folder, query in (("inbox", "SELECT body, sender, received_at FROM inbox WHERE event != "
                                        "'acknowledgement' ORDER BY rowid"),
                              ("outbox", "SELECT body, ?, sent_at FROM outbox WHERE sent_at IS NOT NULL AND "
                                         "coalesce(state, '') NOT IN ('refused', 'failed') ORDER BY seq")):
            path = root / folder / f"{pid}.db"
            if not path.exists():
                continue
            db = sqlite_db.connect(path, page_size=sqlite_db.MESSAGE_PAGE_SIZE)  # as its owner makes it
            try:
                rows = db.execute(query, (pid,) if folder == "outbox" else ()).fetchall()
            finally:
                db.close()
            for body, sender, at in rows:
                for signal in signals_from(orjson.loads(body), sender):
                    held.setdefault(signal.message_id, (_time(at), signal))
    return sorted(held.values(), key=lambda item: item[0])


def escalation_message(e: Escalation, host_la: str, name: str, now: datetime, reason: str) -> dict:
    """The standard escalation message for one decision: names the rule, its version, the window and the signals."""
    message_id = f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{host_la}/{e.setting}/{e.rule}/{e.window_end.isoformat()}')}"
    b = c.MessageBuilder("escalation", host_la, message_id=message_id, moment=now)
    setting = b.add(c.setting(e.setting, name or e.setting))
    description = (f"{e.rule_title}: {e.total:g} against a threshold of {e.threshold:.1f} for {e.children} children "
                   f"placed, sources {', '.join(e.sources)}" + (f", pooled over {len(e.pooled_settings)} settings"
                                                                  if e.pooled_settings else "") + ".")
    b.add(c.escalation(reason, setting, host_la, c.timestamp(e.fired_at), description=description,
                       rule=(e.rule, e.rules_version, e.rule_title),
                       window=(c.timestamp(e.window_start), c.timestamp(e.window_end)),
                       signals=[s.split("#")[0] for s in dict.fromkeys(e.signal_ids)]), focus=True)
    return b.build()


def alert_message(alert: Alert, clock: Clock, version: str, host_la: str, name: str, now: datetime) -> dict:
    """A statutory clock alert as a standard escalation (reason statutory-clock): the clock as the rule, from the
    moment the item fell due to the moment it was raised as the window, a late notice's own message as the signal."""
    key = f"{host_la}/{alert.setting}/{alert.clock}/{alert.due.isoformat()}/{alert.detail}"
    b = c.MessageBuilder("escalation", host_la, message_id=f"urn:uuid:{uuid.uuid5(NAMESPACE, key)}", moment=now)
    setting = b.add(c.setting(alert.setting, name or alert.setting))
    b.add(c.escalation("statutory-clock", setting, host_la, c.timestamp(alert.raised_at), priority="routine",
                       description=f"{clock.title}: {alert.detail}. Source: {clock.source}",
                       rule=(clock.id, version, clock.title),
                       window=(c.timestamp(alert.due), c.timestamp(max(alert.raised_at, alert.due))),
                       signals=[alert.message_id] if alert.message_id else []), focus=True)
    return b.build()


def run_pass(root: Path, directory: d.Directory, host_la: str, rules: RuleSet, outbox, *,
             now: datetime | None = None) -> Pass:
    """One pass: recompute from what the authority holds, queue new escalations in `outbox`, record new alerts."""
    now = now or datetime.now(UTC)
    area = area_of(directory, host_la)
    (root / "oversight").mkdir(exist_ok=True)
    state = sqlite_db.connect(root / "oversight" / f"{host_la}.db")
    try:
        state.executescript(_SCHEMA)
        with sqlite_db.transaction(state):
            state.execute("INSERT OR IGNORE INTO started (id, at) VALUES (1, ?)", (now.isoformat(),))
        started = _time(state.execute("SELECT at FROM started").fetchone()[0])
        engine = Engine(rules, area, start=started)
        timeline = held_signals(root, [host_la, area.host_lado])
        for arrived, signal in timeline:
            engine.observe(signal, max(arrived, signal.at))
        engine.tick(now)
        result = Pass(findings=list(engine.findings), signals=len(timeline))
        known = {row[0] for row in state.execute("SELECT message_id FROM escalations")}
        reasons = {rule.id: rule.reason for rule in rules.rules}  # the rules say which escalation reason each gives
        messages = []
        for e in engine.escalations:
            message = escalation_message(e, host_la, area.settings[e.setting].name, now, reasons[e.rule])
            message_id = message["identifier"]["value"]
            if message_id in known:
                continue
            known.add(message_id)
            messages.append(message)
            result.escalations.append((message_id, e))
        seen_alerts = {tuple(r) for r in state.execute("SELECT clock, setting, due, detail FROM alerts")}
        result.alerts = [a for a in engine.alerts
                         if (a.clock, a.setting, a.due.isoformat(), a.detail) not in seen_alerts]
        clocks = {clock.id: clock for clock in rules.clocks}
        messages += [alert_message(a, clocks[a.clock], rules.version, host_la, area.settings[a.setting].name, now)
                     for a in result.alerts]
        if messages:
            _, refused = outbox.add_many(messages)
            if refused:
                raise OversightError(f"an escalation message broke the standard ({refused[0][1]}); nothing of it "
                                     "was sent; please report it")
        with sqlite_db.transaction(state):
            state.executemany("INSERT OR IGNORE INTO escalations VALUES (?, ?, ?, ?, ?, ?)",
                              [(mid, e.setting, e.rule, e.window_end.isoformat(), e.fired_at.isoformat(),
                                orjson.dumps(e.as_dict()).decode()) for mid, e in result.escalations])
            state.executemany("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?)",
                              [(a.clock, a.setting, a.due.isoformat(), a.detail, a.raised_at.isoformat())
                               for a in result.alerts])
    finally:
        state.close()
    return result
