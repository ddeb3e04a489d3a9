"""Standard messages to signals: what oversight counts from each message the host authority receives.

Only identifiers and codes are read (setting URN, staff id, case reference, child pseudonym, categories, dates);
no narrative, name or summary. A child with no pseudonym is counted by a one-way digest of its placing
authority's local id, never by the id itself.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from broker.oversight.signals import Signal
from standard import catalogue as cat

CONCERN_KINDS = {"whistleblowing": "whistleblowing", "complaint": "complaint", "hospital-referral": "hospital-referral",
                 "missing-episode": "missing-episode", "section-47-enquiry": "child-protection",
                 "child-protection-plan": "child-protection", "other": "concern-other"}
CONCERN_ENDINGS = frozenset({"ALLEG", "STAND", "APPRR"})  # SSDA903 reasons: allegation, standards, approval removed
NOT_SAFEGUARDED = frozenset({"no", "partly"})


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # a date alone is read as UTC midnight


def _resources(bundle: dict) -> dict[str, dict]:
    return {e["fullUrl"]: e["resource"] for e in bundle.get("entry", [])}


def _codes(concept: dict | None) -> list[str]:
    return [c.get("code", "") for c in (concept or {}).get("coding", [])]


def _identifier(resource: dict | None, system: str) -> str | None:
    for ident in (resource or {}).get("identifier", []):
        if ident.get("system") == system:
            return ident.get("value")
    return None


def _child_key(patient: dict | None) -> str | None:
    pseudonym = _identifier(patient, cat.CHILD_PSEUDONYM)
    if pseudonym:
        return pseudonym
    for ident in (patient or {}).get("identifier", []):
        if ident.get("system") == cat.LOCAL_CHILD_ID:
            la = ident.get("assigner", {}).get("identifier", {}).get("value", "")
            return "d-" + hashlib.sha256(f"{la}/{ident.get('value')}".encode()).hexdigest()[:20]
    return None


def _incident_kind(adverse_event: dict) -> str:
    category = (_codes(adverse_event.get("event")) or [""])[0]
    aspects = {code for concept in adverse_event.get("category", []) for code in _codes(concept)}
    if category == "40-1-death":
        return "incident-death"
    if "health-related" in aspects:
        return "incident-hospital"
    if "restraint" in aspects:
        return "incident-restraint"
    if category == "40-4-b-police-incident":
        return "incident-police"
    if "missing" in aspects:
        return "incident-missing"
    return "incident-other"


def _answers(response: dict) -> dict[str, Any]:
    out = {}
    for item in response.get("item", []):
        answer = (item.get("answer") or [{}])[0]
        value = next((v for k, v in answer.items() if k.startswith("value")), None)
        out[item.get("linkId")] = value.get("code") if isinstance(value, dict) else value
    return out


def signals_from(bundle: dict, sender: str) -> list[Signal]:
    """The signals one received, verified message carries (none for events oversight does not count).

    Args:
        bundle: the message as parsed JSON.
        sender: the participant that signed it (from the verified signature, not from the message).
    """
    header = bundle["entry"][0]["resource"]
    event = header["eventCoding"]["code"]
    message_id = bundle["identifier"]["value"]
    resources = _resources(bundle)
    focus = resources.get(header["focus"][0]["reference"]) if header.get("focus") else None
    stamp = _time(bundle.get("timestamp"))

    def resolve(reference: dict | None) -> dict | None:
        return resources.get((reference or {}).get("reference", ""))

    def setting_urn(reference: dict | None) -> str | None:
        return _identifier(resolve(reference), cat.OFSTED_URN)

    def one(kind: str, setting: str | None, at: datetime | None, **extra) -> list[Signal]:
        if not setting or not at:
            return []
        return [Signal(message_id if not extra.get("suffix") else f"{message_id}#{extra.pop('suffix')}", kind,
                       setting, at, sender, **extra)]

    if focus is None:
        return []
    if event in ("placement-started", "placement-ended"):
        setting = setting_urn((focus.get("location") or [{}])[0].get("location"))
        child = _child_key(resolve(focus.get("subject")))
        if event == "placement-started":
            return one("placement-started", setting, _time(focus.get("period", {}).get("start")), child=child)
        reason = set(_codes(focus.get("hospitalization", {}).get("dischargeDisposition")))
        kind = "placement-ended-after-concern" if reason & CONCERN_ENDINGS else "placement-ended"
        return one(kind, setting, _time(focus.get("period", {}).get("end")), child=child)
    if event == "serious-incident":
        incident = next((resolve(a) for a in focus.get("about", [])
                         if (resolve(a) or {}).get("resourceType") == "AdverseEvent"), None)
        if incident is None:
            return []
        return one(_incident_kind(incident), setting_urn(incident.get("location")), _time(focus.get("sent")),
                   occurred=_time(incident.get("date")), child=_child_key(resolve(incident.get("subject"))))
    if event in ("independent-visitor-report", "quality-of-care-review"):
        setting = setting_urn(focus.get("subject"))
        answers = _answers(focus)
        authored = _time(focus.get("authored"))
        if event == "quality-of-care-review":
            return one("reg45-review", setting, authored, occurred=authored)
        visited = _time(answers.get("visit-date")) or authored
        out = one("reg44-report", setting, authored, occurred=visited)
        if answers.get("children-safeguarded") in NOT_SAFEGUARDED:
            out += one("reg44-concern", setting, authored, occurred=visited, suffix="concern")
        return out
    if event == "allegation-referral":
        case = _identifier(focus, cat.CASE_REFERENCE)
        staff = _identifier(resolve(focus.get("for")), cat.LOCAL_STAFF_ID)
        return one("allegation", setting_urn(focus.get("location")), _time(focus.get("authoredOn")), case=case,
                   staff=staff)
    if event == "allegation-notification":
        task = next((resolve(a) for a in focus.get("about", []) if (resolve(a) or {}).get("resourceType") == "Task"),
                    None)
        setting = next((setting_urn(a) for a in focus.get("about", []) if setting_urn(a)), None)
        return one("allegation-notified", setting, _time(focus.get("sent")),
                   case=_identifier(task, cat.CASE_REFERENCE))
    if event == "allegation-outcome":
        outcome = {c for o in focus.get("output", []) for c in _codes(o.get("valueCodeableConcept"))}
        if "substantiated" not in outcome:
            return []
        return one("allegation-substantiated", setting_urn(focus.get("location")), stamp,
                   case=_identifier(focus, cat.CASE_REFERENCE),
                   staff=_identifier(resolve(focus.get("for")), cat.LOCAL_STAFF_ID))
    if event == "concern-notification":
        kind = CONCERN_KINDS.get((_codes((focus.get("category") or [{}])[0]) or [""])[0])
        setting = next((setting_urn(a) for a in focus.get("about", []) if setting_urn(a)), None)
        if kind is None:
            return []
        return one(kind, setting, _time(focus.get("sent")), child=_child_key(resolve(focus.get("subject"))))
    if event == "inspection-outcome":
        judgement = (_codes((focus.get("reasonCode") or [{}])[0]) or [""])[0]
        kind = {j: f"inspection-{j}" for j in ("outstanding", "good", "requires-improvement", "inadequate")}
        setting = next((setting_urn(a) for a in focus.get("about", []) if setting_urn(a)), None)
        return one(kind[judgement], setting, _time(focus.get("sent"))) if judgement in kind else []
    return []  # escalations, acknowledgements and placement corrections are not signals about a setting
