"""Example messages, one per scenario, named ``<event>-<scenario>``. All people in them are invented."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from standard import catalogue as cat
from standard import compose as c
from standard.validator.business_rules import nhs_check_digit

# Participants of the examples: public organisation codes, invented setting and people.
PLACING_LA, PLACING_LA_CODE = "la-886", "886"  # Kent
HOST_LA, HOST_LADO, HOST_ICB = "la-371", "lado-371", "icb-QF7"  # Doncaster, South Yorkshire ICB
PROVIDER = "provider-example-care"
PLACING_LADO = "lado-886"
SETTING_URN, SETTING_NAME = "SC900001", "Example Lodge"
MOMENT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def synthetic_nhs_number(seed: int) -> str:
    """A 999-prefixed NHS number (the range reserved for testing) with a valid check digit."""
    n = seed
    while (check := nhs_check_digit(f"999{n:06d}")) is None:
        n += 1
    return f"999{n:06d}{check}"


def _uuids(name: str) -> Callable[[], uuid.UUID]:
    counter = iter(range(10_000))
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, cat.CANONICAL)
    return lambda: uuid.uuid5(namespace, f"{name}/{next(counter)}")


def _builder(name: str, event: str, sender: str, **kw) -> c.MessageBuilder:
    return c.MessageBuilder(event, sender, moment=MOMENT, new_uuid=_uuids(name), **kw)


def _setting(b: c.MessageBuilder, *, with_provider: bool = True, **kw) -> str:
    provider = None
    if with_provider:
        provider = b.add(c.organization("Example Care Ltd", {cat.OFSTED_URN: "SC900000"}))
    return b.add(c.setting(SETTING_URN, SETTING_NAME, provider_ref=provider, **kw))


def _child(b: c.MessageBuilder, seed: int = 1, **kw) -> str:
    return b.add(c.child(f"C{seed:05d}", PLACING_LA_CODE, "2012-05-14", "male",
                         nhs_number=synthetic_nhs_number(seed), pseudonym=f"p-{seed:08x}", **kw))


def _placement(name: str, event: str, *, end: str | None = None, end_reason=None, confidential=False) -> dict:
    security = ["R", "confidential-placement"] if confidential else []
    b = _builder(name, event, PLACING_LA, security=security)
    child = _child(b, security=security)
    episode = b.add(c.looked_after_episode(child, PLACING_LA, "C2", "2024-09-01"))
    setting = _setting(b, security=security)
    b.add(c.placement(child, episode, setting, "K2", "2026-02-23", provider_type="PR4", end=end,
                      end_reason=end_reason, security=security), focus=True)
    return b.build()


def _serious_incident(name: str, category: str, aspects=()) -> dict:
    b = _builder(name, "serious-incident", PROVIDER)
    child = _child(b)
    setting = _setting(b)
    incident = b.add(c.serious_incident(child, setting, category, "2026-03-01T22:15:00Z", aspects=aspects,
                                        description="Invented incident for the example."))
    b.add(c.incident_notification(incident, setting, child, PROVIDER, "2026-03-02T08:00:00Z", category,
                                  summary="Police attended; the child is safe."), focus=True)
    return b.build()


def _report(name: str, event: str, questionnaire: str, answers: dict) -> dict:
    b = _builder(name, event, PROVIDER)
    setting = _setting(b)
    b.add(c.report(questionnaire, setting, "2026-03-01", PROVIDER, answers), focus=True)
    return b.build()


def _allegation(name: str, event: str, sender: str, *, outcome: str | None = None) -> dict:
    b = _builder(name, event, sender, security=["allegation-detail"])
    setting = _setting(b, with_provider=False)
    person = b.add(c.staff_member("Invented", "Alex"))
    role = b.add(c.staff_role("S-0042", PROVIDER, setting, practitioner_ref=person, job="Residential support worker"))
    task = c.allegation_referral("LADO-371-2026-0007", role, setting, HOST_LADO, sender, "2026-03-01T10:00:00Z",
                                 "physical-abuse", summary="Invented summary: a child reported being pushed.",
                                 outcome=outcome)
    if event == "allegation-notification":
        task_ref = b.add(task)
        b.add(c.allegation_notification(task_ref, setting, HOST_LADO, "2026-03-02T09:00:00Z",
                                        summary="Strategy discussion held; staff member suspended."), focus=True)
    else:
        b.add(task, focus=True)
    return b.build()


def _concern(name: str, concern_type: str, sender: str, *, with_child: bool = False, security=()) -> dict:
    b = _builder(name, "concern-notification", sender, security=security)
    setting = _setting(b, with_provider=False)
    child = _child(b) if with_child else None
    b.add(c.concern(concern_type, setting, sender, "2026-03-02T09:00:00Z", child_ref=child,
                    summary="Invented concern for the example.", security=security), focus=True)
    return b.build()


def _inspection(name: str) -> dict:
    b = _builder(name, "inspection-outcome", "ofsted")
    setting = _setting(b, with_provider=False)
    b.add(c.inspection_outcome(setting, "ofsted", "2026-03-02T09:00:00Z", "inadequate",
                               summary="Invented: children are not protected from harm."), focus=True)
    return b.build()


def _escalation(name: str) -> dict:
    b = _builder(name, "escalation", "router")
    setting = _setting(b, with_provider=False)
    b.add(c.escalation("triangulation-threshold", setting, "router", "2026-03-02T09:30:00Z",
                       description="Eight concerns from three sources in 91 days, for 3 children placed.",
                       rule=("OVR-SOURCES", "1.0.0", "Several independent sources point the same way"),
                       window=("2025-12-01T09:30:00Z", "2026-03-02T09:30:00Z"),
                       signals=[f"urn:uuid:00000000-0000-4000-8000-00000000010{i}" for i in range(8)]),
          focus=True)
    return b.build()


_ANSWERED = "urn:uuid:00000000-0000-4000-8000-000000000001"  # the message the response examples answer


def _ack(name: str, code: str, details=()) -> dict:
    return c.acknowledgement("urn:uuid:00000000-0000-4000-8000-000000000001", "router", code, details=details,
                             moment=MOMENT, new_uuid=_uuids(name))


_REG44 = {"visit-date": "2026-02-26", "visit-announced": False, "children-spoken-to": 3, "staff-spoken-to": 4,
          "records-checked": "Daily logs, incident records, complaints log",
          "children-safeguarded": "partly", "wellbeing-promoted": "yes",
          "concerns": "Two restraint records lacked a debrief.", "recommendations": "Debrief within 24 hours."}
_REG45 = {"review-period-start": "2025-09-01", "review-period-end": "2026-02-28",
          "quality-standards": "Invented assessment against the nine quality standards.",
          "children-views": "Children said they feel listened to.",
          "actions": "Improve restraint debriefs; refresh safeguarding training."}

SCENARIOS: dict[str, Callable[[str], dict]] = {
    "placement-started-childrens-home": lambda n: _placement(n, "placement-started"),
    "placement-started-confidential": lambda n: _placement(n, "placement-started", confidential=True),
    "placement-changed-legal-status": lambda n: _placement(n, "placement-changed"),
    "placement-ended-allegation": lambda n: _placement(
        n, "placement-ended", end="2026-03-01", end_reason=("ssda903-reason-placement-change", "ALLEG")),
    "serious-incident-police": lambda n: _serious_incident(n, "40-4-b-police-incident"),
    "serious-incident-health-related": lambda n: _serious_incident(
        n, "40-4-e-other-serious-incident", aspects=("health-related", "restraint")),
    "independent-visitor-report-monthly": lambda n: _report(n, "independent-visitor-report", "reg44-visit-report",
                                                            _REG44),
    "quality-of-care-review-six-monthly": lambda n: _report(n, "quality-of-care-review", "reg45-quality-review",
                                                            _REG45),
    "allegation-referral-physical": lambda n: _allegation(n, "allegation-referral", PROVIDER),
    "allegation-notification-cross-boundary": lambda n: _allegation(n, "allegation-notification", HOST_LADO),
    "allegation-outcome-substantiated": lambda n: _allegation(n, "allegation-outcome", HOST_LADO,
                                                              outcome="substantiated"),
    "concern-notification-whistleblowing": lambda n: _concern(n, "whistleblowing", "ofsted",
                                                              security=["whistleblower-identity"]),
    "concern-notification-missing-episode": lambda n: _concern(n, "missing-episode", PROVIDER, with_child=True),
    "inspection-outcome-inadequate": _inspection,
    "escalation-triangulation": _escalation,
    "acknowledgement-accepted": lambda n: _ack(n, "accepted"),
    "acknowledgement-rejected": lambda n: _ack(n, "payload-invalid", details=[
        ("error", "invalid", "payload-invalid", "profile-cardinality at Bundle.timestamp")]),
    "acknowledgement-received": lambda n: c.acknowledgement(
        _ANSWERED, PLACING_LADO, "received", details=[("information", "informational", "received",
                                                       "Acknowledged by a LADO officer.")],
        moment=MOMENT, new_uuid=_uuids(n)),
    "decision-recorded-strategy-meeting": lambda n: c.decision_recorded(
        _ANSWERED, PLACING_LADO, "strategy-meeting", text="Invented: strategy meeting set for 4 March.",
        moment=MOMENT, new_uuid=_uuids(n)),
    "decision-recorded-visit": lambda n: c.decision_recorded(
        _ANSWERED, HOST_LA, "visit-arranged", moment=MOMENT, new_uuid=_uuids(n)),
    "information-request-staff-deployment": lambda n: c.information_requested(
        _ANSWERED, PLACING_LADO, "Invented: is the staff member still working with children?", moment=MOMENT,
        new_uuid=_uuids(n)),
}


def all_examples() -> dict[str, dict]:
    """Every example message by name."""
    return {name: make(name) for name, make in SCENARIOS.items()}
