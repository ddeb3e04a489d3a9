"""What a message says, as a person reads it: the case note behind each inbox page. Pure functions of the
message and the catalogue; nothing here is rendered, so the templates escape everything they show."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.routing import placing_la_code
from standard import catalogue as cat


@dataclass(frozen=True)
class Child:
    key: str  # the placing LA's local id with the LA, as "886/C00001": what the inbox files a child under
    local_id: str
    placing_la: str
    birth_date: str | None
    gender: str | None
    nhs_number: str | None


@dataclass(frozen=True)
class CaseNote:
    event: str
    title: str
    sender: str
    sent_at: str | None
    setting_urn: str | None
    setting_name: str | None
    children: tuple[Child, ...]
    what: list[tuple[str, str]] = field(default_factory=list)  # (label, text) lines of what happened
    labels: tuple[str, ...] = ()
    timeliness: str = ""  # when the law says the sender must send it
    purpose: str = ""  # why the reader is told


def _resources(bundle: dict) -> list[dict]:
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def _identifier(resource: dict, system: str) -> str | None:
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == system and isinstance(ident.get("value"), str):
            return ident["value"]
    return None


def _codes(resource: dict, element: str) -> list[dict]:
    value = resource.get(element)
    concepts = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    return [c for concept in concepts if isinstance(concept, dict) for c in concept.get("coding") or []
            if isinstance(c, dict)]


def _display(resource: dict, element: str) -> str | None:
    codes = _codes(resource, element)
    return (codes[0].get("display") or codes[0].get("code")) if codes else None


def children_of(bundle: dict) -> tuple[Child, ...]:
    out = []
    for r in _resources(bundle):
        if r.get("resourceType") != "Patient":
            continue
        local = None
        for ident in r.get("identifier") or []:
            if isinstance(ident, dict) and ident.get("system") == cat.LOCAL_CHILD_ID:
                local = (str(ident.get("value")), placing_la_code(ident) or "?")
        if local is None:
            continue
        out.append(Child(f"{local[1]}/{local[0]}", local[0], local[1], r.get("birthDate"), r.get("gender"),
                         _identifier(r, cat.NHS_NUMBER)))
    return tuple(out)


def _escalation_input(item: dict) -> str | None:
    """An escalation's rule (code, title, rules version) or window (start to end), as a line of text."""
    coding, period = item.get("valueCoding"), item.get("valuePeriod")
    if isinstance(coding, dict) and coding.get("code"):
        return f"{coding['code']} {coding.get('display') or ''} (rules {coding.get('version') or '?'})".strip()
    if isinstance(period, dict) and period.get("start"):
        return f"{period['start']} to {period.get('end') or 'now'}"
    return None


def _what(resources: list[dict]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for r in resources:
        kind = r.get("resourceType")
        if kind == "Encounter":
            period = r.get("period") or {}
            if period.get("start"):
                lines.append(("Placement started", str(period["start"])))
            if period.get("end"):
                lines.append(("Placement ended", str(period["end"])))
            if (kind_of := _display(r, "type")) is not None:
                lines.append(("Placement type", kind_of))
            reason = _display(r.get("hospitalization") or {}, "dischargeDisposition")
            if reason:
                lines.append(("Why it ended", reason))
        elif kind == "AdverseEvent":
            lines.append(("Incident", _display(r, "event") or "not stated"))
            if r.get("date"):
                lines.append(("Happened", str(r["date"])))
            if isinstance((r.get("event") or {}).get("text"), str):
                lines.append(("Account", r["event"]["text"]))
        elif kind == "Task":
            escalation = any(c.get("code") == "escalation" for c in _codes(r, "code"))
            if escalation:
                lines += [(label, text) for label, text in (("Reason", _display(r, "reasonCode")),
                                                             ("Why", r.get("description"))) if isinstance(text, str)]
            signals = []
            for item in r.get("input") or []:
                if not isinstance(item, dict):
                    continue
                label = _display(item, "type") or "Detail"
                value = item.get("valueString") or _display(item, "valueCodeableConcept") or _escalation_input(item)
                if isinstance(item.get("valueIdentifier"), dict):
                    signals.append(str(item["valueIdentifier"].get("value")))
                elif value:
                    lines.append((label, str(value)))
            if signals:  # an escalation names every message that counted: one line, so a person can look each up
                lines.append((f"Signals ({len(signals)})", ", ".join(signals)))
            if r.get("authoredOn"):
                lines.append(("Raised" if escalation else "Referred", str(r["authoredOn"])))
        elif kind == "PractitionerRole":
            role = next((c.get("text") for c in r.get("code") or [] if isinstance(c, dict) and c.get("text")), None)
            if role:
                lines.append(("Staff role", role))
        elif kind == "Communication":
            if (category := _display(r, "category")) is not None:
                lines.append(("Kind", category))
            if (decision := _display(r, "reasonCode")) is not None and category == "Decision":
                lines.append(("Decision", decision))
            if any(c.get("code") == "inspection-outcome" for c in _codes(r, "category")):
                lines.append(("Judgement", _display(r, "reasonCode") or "not stated"))
            for part in r.get("payload") or []:
                if isinstance(part, dict) and isinstance(part.get("contentString"), str):
                    lines.append(("Message", part["contentString"]))
        elif kind == "EpisodeOfCare" and (status := _display(r, "type")) is not None:
            lines.append(("Legal status", status))
    return lines


def case_note(bundle: dict) -> CaseNote:
    resources = _resources(bundle)
    header = next((r for r in resources if r.get("resourceType") == "MessageHeader"), {})
    code = (header.get("eventCoding") or {}).get("code")
    event = cat.EVENTS_BY_CODE.get(code)
    setting = next((r for r in resources if r.get("resourceType") == "Location"), {})
    labels = tuple(c.get("code") for c in (bundle.get("meta") or {}).get("security") or []
                   if isinstance(c, dict) and isinstance(c.get("code"), str))
    sender = ((header.get("sender") or {}).get("identifier") or {}).get("value") or "unknown"
    answered = (header.get("response") or {}).get("identifier")
    what = _what(resources)
    if isinstance(answered, str) and answered:
        what.insert(0, ("In answer to your message", "urn:uuid:" + answered.removeprefix("urn:uuid:")))
    return CaseNote(
        event=code or "unknown", title=event.display if event else "Unknown message", sender=str(sender),
        sent_at=bundle.get("timestamp"), setting_urn=_identifier(setting, cat.OFSTED_URN),
        setting_name=setting.get("name") if isinstance(setting.get("name"), str) else None,
        children=children_of(bundle), what=what, labels=labels,
        timeliness=event.timeliness if event else "", purpose=event.purpose if event else "")
