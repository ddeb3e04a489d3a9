"""A replay's result as a person reads it (text) and as a program reads it (JSON)."""

from __future__ import annotations

from collections import Counter

from broker.oversight.replay import ReplayResult


def as_json(result: ReplayResult) -> dict:
    """Every setting with its escalations (rule, window, signals) and alerts; the findings; the summary."""
    settings = []
    for s in sorted(result.settings.values(), key=lambda s: (not s.concerning, s.urn)):
        first = s.first_escalation
        settings.append({
            "setting": s.urn, "name": s.name, "host": s.host, "concerning": s.concerning,
            "first_signal": s.first_signal.isoformat() if s.first_signal else None,
            "first_escalation": first.isoformat() if first else None,
            "days_to_first_escalation": (first - s.first_signal).days if first and s.first_signal else None,
            "escalations": [e.as_dict() for e in s.escalations],
            "alerts": [a.as_dict() for a in s.alerts],
        })
    return {
        "scenario": result.scenario, "title": result.title, "rules_version": result.rules_version,
        "start": result.start.isoformat(), "end": result.end.isoformat(), "signals": result.signals,
        "summary": summary(result), "settings": settings,
        "findings": [f.as_dict() for f in result.findings],
    }


def summary(result: ReplayResult) -> dict:
    concerning = result.concerning()
    ordinary = result.ordinary()
    return {
        "settings": len(result.settings),
        "setting_years": round(result.setting_years, 1),
        "concerning_settings": len(concerning),
        "concerning_escalated_within_three_months": sum(s.escalated_within_three_months for s in concerning),
        "ordinary_settings": len(ordinary),
        "ordinary_escalations": sum(len(s.escalations) for s in ordinary),
        "false_escalations_per_100_setting_years": round(result.false_escalations_per_100_setting_years(), 2),
        "escalations_by_rule": dict(Counter(e.rule for s in result.settings.values() for e in s.escalations)),
        "alerts_by_clock": dict(Counter(a.clock for s in result.settings.values() for a in s.alerts)),
        "findings_by_code": dict(Counter(f.code for f in result.findings)),
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def as_text(result: ReplayResult, *, all_settings: bool = False) -> str:
    """The summary, then per setting (concerning ones, and any escalated) each escalation and when it fired."""
    s = summary(result)
    lines = [f"{result.title}", f"rules {result.rules_version}; {result.start.date()} to {result.end.date()}; "
             f"{result.signals} signals; {s['settings']} settings ({s['setting_years']} setting-years)"]
    if s["concerning_settings"]:
        lines.append(f"concerning settings escalated within three months of their first signal: "
                     f"{s['concerning_escalated_within_three_months']} of {s['concerning_settings']}")
    if s["ordinary_settings"]:
        lines.append(f"ordinary settings: {s['ordinary_escalations']} escalations, "
                     f"{s['false_escalations_per_100_setting_years']} per 100 setting-years")
    if s["alerts_by_clock"]:
        lines.append("statutory clock alerts: " + _counts(s["alerts_by_clock"]))
    if s["findings_by_code"]:
        lines.append("findings (not counted): " + _counts(s["findings_by_code"]))
    for setting in sorted(result.settings.values(), key=lambda x: (not x.concerning, x.urn)):
        if not (all_settings or setting.concerning or setting.escalations):
            continue
        first = setting.first_signal.date().isoformat() if setting.first_signal else "none"
        lines.append("")
        lines.append(f"{setting.urn} {setting.name} (host {setting.host}): first signal {first}, "
                     f"{len(setting.escalations)} escalation(s), {len(setting.alerts)} alert(s)")
        for e in setting.escalations:
            after = f", {(e.fired_at - setting.first_signal).days} days after the first signal" \
                if setting.first_signal else ""
            lines.append(f"  {e.fired_at.date()} {e.rule} {e.rule_title}{after}")
            lines.append(f"      window {e.window_start.date()} to {e.window_end.date()}: total {e.total:g} against "
                         f"{e.threshold:.1f} for {e.children} children; sources {', '.join(e.sources)}; "
                         f"{len(e.signal_ids)} signals, first {e.signal_ids[0] if e.signal_ids else '-'}")
    return "\n".join(lines) + "\n"
