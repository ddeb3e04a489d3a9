"""Build standard messages from plain values: the one place that knows how each resource is shaped.

Adapters, the demo, the examples and the conformance kit build messages here, so a
message built by any of them has the shape the profiles describe.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from standard import catalogue as cat
from standard import terminology as term

Resource = dict[str, Any]


def random_uuid() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` gives it but about three times as fast: an
    adapter makes five for every message it builds. The random bytes come from the operating system 256 UUIDs at a
    time; a forked process starts with none of its parent's (two processes never share one)."""
    with _random_lock:  # threads share the pool (the web inbox's, the router's): one takes a UUID at a time
        if not _random_bytes:
            _random_bytes.extend(os.urandom(16 * 256))
        raw = _random_bytes[-16:]
        del _random_bytes[-16:]
    return _uuid_text(raw, 4)


_random_bytes = bytearray()
_random_lock = threading.Lock()
os.register_at_fork(after_in_child=_random_bytes.clear)


def name_uuid(namespace: uuid.UUID, name: str) -> str:
    """The name-based (version 5, SHA-1) UUID of `name` in `namespace` as text: `str(uuid.uuid5(...))`, faster."""
    return _uuid_text(bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16]), 5)  # noqa: S324 - RFC 4122


def _uuid_text(raw: bytearray, version: int) -> str:
    raw[6] = (raw[6] & 0x0F) | (version << 4)
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def participant(participant_id: str) -> dict:
    """A logical reference to a directory participant."""
    return {"identifier": {"system": cat.PARTICIPANT_ID, "value": participant_id}}


def coding(system_id: str, code: str) -> dict:
    return {"system": term.system_url(system_id), "code": code, "display": term.display(system_id, code)}


def concept(system_id: str, code: str) -> dict:
    return {"coding": [coding(system_id, code)]}


def security_labels(*codes: str) -> list[dict]:
    """meta.security codings for our sensitivity labels (and R/V confidentiality)."""
    labels = []
    for code in codes:
        if code in ("N", "R", "V"):
            labels.append({"system": term.V3_CONFIDENTIALITY, "code": code})
        else:
            labels.append({"system": term.system_url("security-label"), "code": code})
    return labels


def _with_security(resource: Resource, labels: Iterable[str]) -> Resource:
    labels = list(labels)
    if labels:
        resource["meta"] = {"security": security_labels(*labels)}
    return resource


def timestamp(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MessageBuilder:
    """Assembles a message Bundle: MessageHeader first, every entry with a urn:uuid fullUrl.

    Example:
        >>> b = MessageBuilder("concern-notification", sender="ofsted")
        >>> setting_ref = b.add(setting("SC123456", "Example House"))
        >>> b.add(concern("whistleblowing", setting_ref, "ofsted", sent="2026-01-02"), focus=True)
        >>> bundle = b.build()
    """

    def __init__(
        self,
        event_code: str,
        sender: str,
        *,
        message_id: str | None = None,
        moment: datetime | None = None,
        source_endpoint: str | None = None,
        security: Iterable[str] = (),
        new_uuid: Callable[[], uuid.UUID | str] = random_uuid,
    ):
        self.event = cat.get_event(event_code)
        self.sender = sender
        self._new_uuid = new_uuid
        self.message_id = message_id or f"urn:uuid:{new_uuid()}"
        self.moment = moment
        self.source_endpoint = source_endpoint or f"urn:sgx:participant:{sender}"
        self.security = list(security)
        self._header_url = f"urn:uuid:{new_uuid()}"
        self._entries: list[tuple[str, Resource]] = []
        self._focus: list[str] = []
        self.response: dict | None = None

    def new_url(self) -> str:
        return f"urn:uuid:{self._new_uuid()}"

    def add(self, resource: Resource, *, focus: bool = False, full_url: str | None = None) -> str:
        """Add a resource; return its fullUrl for other resources to reference."""
        url = full_url or self.new_url()
        self._entries.append((url, resource))
        if focus:
            self._focus.append(url)
        return url

    def build(self) -> dict:
        header: Resource = {
            "resourceType": "MessageHeader",
            "eventCoding": coding("event", self.event.code),
            "sender": participant(self.sender),
            "source": {"name": self.sender, "endpoint": self.source_endpoint},
            "focus": [{"reference": url} for url in self._focus],
            "definition": self.event.definition_url,
        }
        if self.response:
            header["response"] = self.response
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "identifier": {"system": cat.MESSAGE_ID_SYSTEM, "value": self.message_id},
            "type": "message",
            "timestamp": timestamp(self.moment),
            "entry": [{"fullUrl": self._header_url, "resource": header}]
            + [{"fullUrl": url, "resource": res} for url, res in self._entries],
        }
        if self.security:
            bundle["meta"] = {"security": security_labels(*self.security)}
        return bundle


def ref(url: str) -> dict:
    return {"reference": url}


def child(local_id: str, la_code: str, birth_date: str, gender: str, *, nhs_number: str | None = None,
          pseudonym: str | None = None, security: Iterable[str] = ()) -> Resource:
    identifiers = [{
        "system": cat.LOCAL_CHILD_ID, "value": local_id,
        "assigner": {"identifier": {"system": cat.DFE_LA_CODE, "value": la_code}},
    }]
    if nhs_number:
        identifiers.append({"system": cat.NHS_NUMBER, "value": nhs_number})
    if pseudonym:
        identifiers.append({"system": cat.CHILD_PSEUDONYM, "value": pseudonym})
    res = {"resourceType": "Patient", "identifier": identifiers, "gender": gender, "birthDate": birth_date}
    return _with_security(res, security)


def looked_after_episode(child_ref: str, placing_la: str, legal_status: str, start: str) -> Resource:
    return {
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [concept("ssda903-legal-status", legal_status)],
        "patient": ref(child_ref),
        "managingOrganization": participant(placing_la),
        "period": {"start": start},
    }


def organization(name: str, identifiers: Mapping[str, str]) -> Resource:
    return {"resourceType": "Organization", "identifier": [{"system": s, "value": v} for s, v in identifiers.items()],
            "name": name}


def setting(urn: str, name: str, *, provider_ref: str | None = None, cqc_location: str | None = None,
            security: Iterable[str] = ()) -> Resource:
    identifiers = [{"system": cat.OFSTED_URN, "value": urn}]
    if cqc_location:
        identifiers.append({"system": cat.CQC_LOCATION_ID, "value": cqc_location})
    res: Resource = {"resourceType": "Location", "identifier": identifiers, "status": "active", "name": name}
    if provider_ref:
        res["managingOrganization"] = ref(provider_ref)
    return _with_security(res, security)


def placement(child_ref: str, episode_ref: str, setting_ref: str, place: str, start: str, *,
              provider_type: str | None = None, provider_ref: str | None = None, end: str | None = None,
              end_reason: tuple[str, str] | None = None, security: Iterable[str] = ()) -> Resource:
    """An Encounter for one placement; `end_reason` is (code system id, code)."""
    period = {"start": start}
    if end:
        period["end"] = end
    res: Resource = {
        "resourceType": "Encounter",
        "status": "finished" if end else "in-progress",
        "class": {"system": term.system_url("placement-class"), "code": "residential-placement"},
        "type": [concept("ssda903-placement-type", place)],
        "subject": ref(child_ref),
        "episodeOfCare": [ref(episode_ref)],
        "period": period,
        "location": [{"location": ref(setting_ref)}],
    }
    if provider_type:
        res["serviceType"] = concept("ssda903-placement-provider", provider_type)
    if provider_ref:
        res["serviceProvider"] = ref(provider_ref)
    if end_reason:
        res["hospitalization"] = {"dischargeDisposition": concept(*end_reason)}
    return _with_security(res, security)


def serious_incident(child_ref: str, setting_ref: str, category: str, date: str, *,
                     aspects: Iterable[str] = (), description: str | None = None) -> Resource:
    event = concept("reg40-category", category)
    if description:
        event["text"] = description
    res: Resource = {
        "resourceType": "AdverseEvent", "actuality": "actual", "event": event,
        "subject": ref(child_ref), "date": date, "location": ref(setting_ref),
    }
    aspects = list(aspects)
    if aspects:
        res["category"] = [concept("incident-aspect", a) for a in aspects]
    return _with_security(res, ["allegation-detail"] if category == "40-4-c-serious-complaint" else [])


def incident_notification(incident_ref: str, setting_ref: str, child_ref: str, sender: str, sent: str,
                          category: str, *, summary: str | None = None) -> Resource:
    res: Resource = {
        "resourceType": "Communication", "status": "completed",
        "category": [concept("communication-category", "serious-incident-notification")],
        "reasonCode": [concept("reg40-category", category)],
        "subject": ref(child_ref), "about": [ref(incident_ref), ref(setting_ref)],
        "sent": sent, "sender": participant(sender),
    }
    if summary:
        res["payload"] = [{"contentString": summary}]
    return res


def report(questionnaire_id: str, setting_ref: str, authored: str, author: str,
           answers: Mapping[str, Any]) -> Resource:
    """A QuestionnaireResponse for a Reg 44 or Reg 45 questionnaire; answers by linkId."""
    from standard.profiles import QUESTIONNAIRES

    _, _, questions = QUESTIONNAIRES[questionnaire_id]
    kinds = {q.link_id: q.type for q in questions}
    items = []
    for link_id, value in answers.items():
        kind = kinds.get(link_id, "string")
        key = {"date": "valueDate", "boolean": "valueBoolean", "integer": "valueInteger",
               "choice": "valueCoding"}.get(kind, "valueString")
        if kind == "choice":
            value = {"code": value}
        items.append({"linkId": link_id, "answer": [{key: value}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": cat.questionnaire_url(questionnaire_id),
        "status": "completed", "subject": ref(setting_ref), "authored": authored,
        "author": participant(author), "item": items,
    }


def staff_member(family: str, given: str) -> Resource:
    return _with_security({"resourceType": "Practitioner", "name": [{"family": family, "given": [given]}]},
                          ["allegation-detail"])


def staff_role(staff_id: str, employer: str, setting_ref: str, *, practitioner_ref: str | None = None,
               job: str | None = None) -> Resource:
    res: Resource = {
        "resourceType": "PractitionerRole",
        "identifier": [{"system": cat.LOCAL_STAFF_ID, "value": staff_id}],
        "organization": participant(employer), "location": [ref(setting_ref)],
    }
    if practitioner_ref:
        res["practitioner"] = ref(practitioner_ref)
    if job:
        res["code"] = [{"text": job}]
    return _with_security(res, ["allegation-detail"])


def allegation_referral(case_ref: str, staff_role_ref: str, setting_ref: str, lado: str, requester: str,
                        authored: str, category: str, *, children: Iterable[str] = (), summary: str | None = None,
                        status: str = "requested", outcome: str | None = None) -> Resource:
    inputs = [{"type": concept("task-input-type", "allegation-category"),
               "valueCodeableConcept": concept("allegation-category", category)}]
    inputs += [{"type": concept("task-input-type", "child"), "valueReference": ref(c)} for c in children]
    if summary:
        inputs.append({"type": concept("task-input-type", "summary"), "valueString": summary})
    res: Resource = {
        "resourceType": "Task",
        "identifier": [{"system": cat.CASE_REFERENCE, "value": case_ref}],
        "status": "completed" if outcome else status, "intent": "order",
        "code": concept("task-code", "allegation-referral"),
        "for": ref(staff_role_ref), "authoredOn": authored,
        "requester": participant(requester), "owner": participant(lado),
        "location": ref(setting_ref), "input": inputs,
    }
    if outcome:
        res["output"] = [{"type": concept("task-input-type", "allegation-outcome"),
                          "valueCodeableConcept": concept("allegation-outcome", outcome)}]
    return _with_security(res, ["allegation-detail"])


def allegation_notification(task_ref: str, setting_ref: str, sender: str, sent: str, *,
                            child_ref: str | None = None, summary: str | None = None) -> Resource:
    res: Resource = {
        "resourceType": "Communication", "status": "completed",
        "category": [concept("communication-category", "allegation-notification")],
        "about": [ref(task_ref), ref(setting_ref)], "sent": sent, "sender": participant(sender),
    }
    if child_ref:
        res["subject"] = ref(child_ref)
    if summary:
        res["payload"] = [{"contentString": summary}]
    return _with_security(res, ["allegation-detail"])


def concern(concern_type: str, setting_ref: str, sender: str, sent: str, *, child_ref: str | None = None,
            summary: str | None = None, security: Iterable[str] = ()) -> Resource:
    res: Resource = {
        "resourceType": "Communication", "status": "completed",
        "category": [concept("concern-type", concern_type)],
        "about": [ref(setting_ref)], "sent": sent, "sender": participant(sender),
    }
    if child_ref:
        res["subject"] = ref(child_ref)
    if summary:
        res["payload"] = [{"contentString": summary}]
    return _with_security(res, security)


def inspection_outcome(setting_ref: str, sender: str, sent: str, judgement: str, *,
                       summary: str | None = None) -> Resource:
    """The regulator's overall judgement of a setting (an inspection-judgement code)."""
    res: Resource = {
        "resourceType": "Communication", "status": "completed",
        "category": [concept("communication-category", "inspection-outcome")],
        "reasonCode": [concept("inspection-judgement", judgement)],
        "about": [ref(setting_ref)], "sent": sent, "sender": participant(sender),
    }
    if summary:
        res["payload"] = [{"contentString": summary}]
    return res


OVERSIGHT_RULES = f"{cat.CANONICAL}/oversight-rules"


def escalation(reason: str, setting_ref: str, requester: str, authored: str, *, priority: str = "urgent",
               description: str | None = None, rule: tuple[str, str, str] | None = None,
               window: tuple[str, str] | None = None, signals: Iterable[str] = ()) -> Resource:
    """An escalation Task; an automatic one names `rule` (id, rules version, title), the `window` (start, end)
    and the message id of every signal that counted, so a person can check it."""
    res: Resource = {
        "resourceType": "Task", "status": "requested", "intent": "order", "priority": priority,
        "code": concept("task-code", "escalation"), "reasonCode": concept("escalation-reason", reason),
        "focus": ref(setting_ref), "requester": participant(requester), "authoredOn": authored,
    }
    if description:
        res["description"] = description
    inputs = []
    if rule:
        rule_id, version, title = rule
        inputs.append({"type": concept("task-input-type", "oversight-rule"),
                       "valueCoding": {"system": OVERSIGHT_RULES, "version": version, "code": rule_id,
                                       "display": title}})
    if window:
        inputs.append({"type": concept("task-input-type", "window"),
                       "valuePeriod": {"start": window[0], "end": window[1]}})
    inputs += [{"type": concept("task-input-type", "signal"),
                "valueIdentifier": {"system": cat.MESSAGE_ID_SYSTEM, "value": message_id}} for message_id in signals]
    if inputs:
        res["input"] = inputs
    return res


def ack_outcome(issues: Iterable[tuple[str, str, str, str | None]]) -> Resource:
    """An OperationOutcome; each issue is (severity, FHIR issue type, ack code, diagnostics)."""
    out = []
    for severity, issue_type, ack_code, diagnostics in issues:
        issue: dict[str, Any] = {"severity": severity, "code": issue_type, "details": concept("ack-code", ack_code)}
        if diagnostics:
            issue["diagnostics"] = diagnostics
        out.append(issue)
    return {"resourceType": "OperationOutcome", "issue": out}


def answering(original_message_id: str) -> dict:
    """MessageHeader.response of a message that answers `original_message_id` (a urn:uuid)."""
    return {"identifier": original_message_id.removeprefix("urn:uuid:"), "code": "ok"}


def decision(decision_code: str, sender: str, sent: str, *, text: str | None = None) -> Resource:
    """A recipient's decision or action about a message (a Communication naming no child)."""
    res: Resource = {
        "resourceType": "Communication", "status": "completed",
        "category": [concept("communication-category", "decision")],
        "reasonCode": [concept("decision-code", decision_code)], "sent": sent, "sender": participant(sender),
    }
    if text:
        res["payload"] = [{"contentString": text}]
    return res


def information_request(question: str, sender: str, sent: str) -> Resource:
    """A question to the sender of a message (a Communication naming no child)."""
    return {
        "resourceType": "Communication", "status": "completed",
        "category": [concept("communication-category", "information-request")],
        "payload": [{"contentString": question}], "sent": sent, "sender": participant(sender),
    }


def decision_recorded(original_message_id: str, sender: str, decision_code: str, *, text: str | None = None,
                      moment: datetime | None = None, new_uuid: Callable[[], uuid.UUID | str] = random_uuid) -> dict:
    """A complete decision-recorded message answering `original_message_id`."""
    builder = MessageBuilder("decision-recorded", sender, moment=moment, new_uuid=new_uuid)
    builder.add(decision(decision_code, sender, timestamp(moment), text=text), focus=True)
    builder.response = answering(original_message_id)
    return builder.build()


def information_requested(original_message_id: str, sender: str, question: str, *, moment: datetime | None = None,
                          new_uuid: Callable[[], uuid.UUID | str] = random_uuid) -> dict:
    """A complete information-request message answering `original_message_id`."""
    builder = MessageBuilder("information-request", sender, moment=moment, new_uuid=new_uuid)
    builder.add(information_request(question, sender, timestamp(moment)), focus=True)
    builder.response = answering(original_message_id)
    return builder.build()


def acknowledgement(original_message_id: str, sender: str, ack_code: str, *,
                    details: Iterable[tuple[str, str, str, str | None]] = (), moment: datetime | None = None,
                    new_uuid: Callable[[], uuid.UUID | str] = random_uuid) -> dict:
    """A complete acknowledgement message answering `original_message_id` (a urn:uuid)."""
    builder = MessageBuilder("acknowledgement", sender, moment=moment, new_uuid=new_uuid)
    issues = list(details) or [("information", "informational", ack_code, None)]
    ok = ack_code in ("accepted", "delivered", "read", "received", "accepted-for-action")
    outcome_url = builder.add(ack_outcome(issues), focus=True)
    builder.response = {
        "identifier": original_message_id.removeprefix("urn:uuid:"),
        "code": "ok" if ok else "fatal-error",
        "details": ref(outcome_url),
    }
    return builder.build()
