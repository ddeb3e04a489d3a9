"""The profiles of the standard, written once as data.

The StructureDefinitions, the JSON Schemas and the validator's reference checks
are all generated from these definitions, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from standard import catalogue as cat
from standard import terminology as term


@dataclass(frozen=True)
class El:
    """A constraint on one element of a profile.

    Attributes:
        path: dotted path below the resource, in JSON names (``eventCoding.code``); a slice is
            written ``identifier:nhsNumber`` and its children ``identifier:nhsNumber.value``.
        min, max: cardinality (max is "0", "1" or "*"); None keeps the base.
        fixed: a primitive value the element must equal, or a partial object it must contain
            (a FHIR pattern). On a slice it is the discriminator.
        binding: id of a value set; with strength "required" codes outside it are errors.
        targets: profile ids a reference must resolve to inside the Bundle.
        logical: the reference identifies a participant by identifier and is not resolved.
        regex: a pattern a primitive value must match.
        finding: the finding code a breach of this constraint produces, where it is not the default.
        short: one line for the element table of the docs.
    """

    path: str
    min: int | None = None
    max: str | None = None
    fixed: Any = None
    binding: str | None = None
    strength: str = "required"
    targets: tuple[str, ...] = ()
    logical: bool = False
    regex: str | None = None
    finding: str | None = None
    short: str = ""


@dataclass(frozen=True)
class Profile:
    """A StructureDefinition of the standard (a constraint on a FHIR R4 resource)."""

    id: str
    type: str
    title: str
    description: str
    elements: tuple[El, ...]
    base: str | None = None  # parent profile id; None derives from the core resource
    abstract: bool = False

    @property
    def url(self) -> str:
        return cat.profile_url(self.id)

    @property
    def base_url(self) -> str:
        if self.base:
            return cat.profile_url(self.base)
        return f"http://hl7.org/fhir/StructureDefinition/{self.type}"


def _cc(system_id: str, code: str) -> dict:
    """A CodeableConcept pattern with one coding."""
    return {"coding": [{"system": term.system_url(system_id), "code": code}]}


UUID_URN = r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SECURITY = El("meta.security", binding="security-labels", short="Sensitivity and handling labels")


def _participant(path: str, short: str, min_: int = 1) -> tuple[El, ...]:
    """A logical reference to a directory participant (never resolved inside the Bundle)."""
    return (
        El(path, min=min_, max="1", logical=True, short=short),
        El(f"{path}.identifier", min=1, short="The participant's identifier"),
        El(f"{path}.identifier.system", min=1, fixed=cat.PARTICIPANT_ID),
        El(f"{path}.identifier.value", min=1),
    )


_PROFILES: list[Profile] = [
    Profile(
        "SGX-MessageBundle", "Bundle", "Safeguarding message Bundle",
        "The envelope of every message: a FHIR message Bundle whose identifier is the message id receivers "
        "use to drop duplicates.",
        (
            El("identifier", min=1, short="Message id; receivers drop duplicates by it"),
            El("identifier.system", min=1, fixed=cat.MESSAGE_ID_SYSTEM),
            El("identifier.value", min=1, regex=UUID_URN, short="urn:uuid of the message"),
            El("type", min=1, fixed="message"),
            El("timestamp", min=1, short="When the message was assembled"),
            El("entry", min=2, short="MessageHeader first, then the resources"),
            El("entry.fullUrl", min=1, regex=UUID_URN, short="urn:uuid; references point at it"),
            El("entry.resource", min=1),
            El("entry.request", max="0"),
            El("entry.response", max="0"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-MessageHeader", "MessageHeader", "Safeguarding MessageHeader",
        "Names the event, the sending participant and the resources the message is about.",
        (
            El("eventCoding", min=1, short="The event of the catalogue"),
            El("eventCoding.system", min=1, fixed=term.system_url("event")),
            El("eventCoding.code", min=1, binding="event"),
            *_participant("sender", "The sending participant"),
            El("source.endpoint", min=1, short="Where acknowledgements go"),
            El("focus", min=1, targets=("*",), short="The resources the message is about"),
            El("definition", min=1, short="The event's MessageDefinition"),
            El("destination", max="0", short="Never sent: the exchange decides the recipients from the catalogue's "
               "routing roles (the delivery note names each one)"),
        ),
    ),
    Profile(
        "SGX-AckMessageHeader", "MessageHeader", "Acknowledgement MessageHeader",
        "The header of an acknowledgement: it answers an earlier message.",
        (
            El("response", min=1, short="The message this acknowledges"),
            El("response.identifier", min=1, short="Bundle.identifier value of the original message, without "
               "the urn:uuid: prefix"),
            El("response.details", targets=("SGX-AckOutcome",)),
        ),
        base="SGX-MessageHeader",
    ),
    Profile(
        "SGX-ResponseMessageHeader", "MessageHeader", "Response MessageHeader",
        "The header of a decision or a request for more information: it answers an earlier message, and the "
        "exchange routes it to that message's sender only.",
        (
            El("response", min=1, short="The message this answers"),
            El("response.identifier", min=1, short="Bundle.identifier value of the original message, without "
               "the urn:uuid: prefix"),
        ),
        base="SGX-MessageHeader",
    ),
    Profile(
        "SGX-Child", "Patient", "Child",
        "A child looked after by the placing authority. Carries what routing and the register need and no "
        "more: never a home address.",
        (
            El("identifier", min=1),
            El("identifier:localId", min=1, max="1", fixed={"system": cat.LOCAL_CHILD_ID},
               short="The placing authority's child id (SSDA903 CHILD)"),
            El("identifier:localId.value", min=1),
            El("identifier:localId.assigner", min=1, logical=True, short="The placing authority"),
            El("identifier:localId.assigner.identifier.system", min=1, fixed=cat.DFE_LA_CODE),
            El("identifier:localId.assigner.identifier.value", min=1),
            El("identifier:nhsNumber", max="1", fixed={"system": cat.NHS_NUMBER}, short="NHS number"),
            El("identifier:nhsNumber.value", min=1, regex=r"^\d{10}$"),
            El("identifier:pseudonym", max="1", fixed={"system": cat.CHILD_PSEUDONYM},
               short="Stable pseudonym the register keys on"),
            El("birthDate", min=1),
            El("gender", min=1, binding="administrative-gender"),
            El("address", max="0", short="Never sent: the setting is the child's location"),
            El("telecom", max="0"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-LookedAfterEpisode", "EpisodeOfCare", "Looked-after episode",
        "The period the child is looked after by the placing authority, with the legal status.",
        (
            El("type", min=1, max="1", binding="ssda903-legal-status", short="Legal status (SSDA903 LS)"),
            El("patient", targets=("SGX-Child",)),
            *_participant("managingOrganization", "The placing authority"),
            El("period", min=1),
            El("period.start", min=1),
        ),
    ),
    Profile(
        "SGX-Placement", "Encounter", "Placement",
        "One placement of a child at a setting. A move to another setting is a new placement.",
        (
            El("status", binding="placement-status"),
            El("class", fixed={"system": term.system_url("placement-class"), "code": "residential-placement"}),
            El("type", min=1, max="1", binding="ssda903-placement-type", short="Placement type (SSDA903 PLACE)"),
            El("serviceType", binding="ssda903-placement-provider", short="Provider type (SSDA903 PLACE_PROVIDER)"),
            El("subject", min=1, targets=("SGX-Child",)),
            El("episodeOfCare", min=1, max="1", targets=("SGX-LookedAfterEpisode",)),
            El("period", min=1),
            El("period.start", min=1, short="Placement start (SSDA903 DECOM)"),
            El("location", min=1, max="1"),
            El("location.location", targets=("SGX-Setting",), short="The setting"),
            El("serviceProvider", targets=("SGX-Organization",), short="The registered provider"),
            El("hospitalization.dischargeDisposition", binding="placement-end-reason",
               short="Why the placement ended (REASON_PLACE_CHANGE or REC)"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-PlacementEnded", "Encounter", "Ended placement",
        "A placement that has ended, with its end date and reason.",
        (
            El("status", fixed="finished"),
            El("period.end", min=1, short="Placement end (SSDA903 DEC)"),
            El("hospitalization", min=1),
            El("hospitalization.dischargeDisposition", min=1),
        ),
        base="SGX-Placement",
    ),
    Profile(
        "SGX-Setting", "Location", "Setting",
        "A children's home, residential special school or other residential setting, identified by its "
        "Ofsted URN.",
        (
            El("identifier", min=1),
            El("identifier:ofstedUrn", min=1, max="1", fixed={"system": cat.OFSTED_URN}, short="Ofsted URN"),
            El("identifier:ofstedUrn.value", min=1, regex=f"^({cat.OFSTED_URN_FORM})$", finding="ofsted-urn-invalid"),
            El("identifier:cqcLocation", max="1", fixed={"system": cat.CQC_LOCATION_ID},
               short="CQC location id, for dual-registered settings"),
            El("name", min=1),
            El("managingOrganization", targets=("SGX-Organization",), short="The registered provider"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-Organization", "Organization", "Organisation",
        "A provider or other organisation named in a message.",
        (
            El("identifier", min=1),
            El("name", min=1),
        ),
    ),
    Profile(
        "SGX-SeriousIncidentNotification", "Communication", "Serious incident notification",
        "The provider's Regulation 40 notification; the incident itself is the AdverseEvent it is about.",
        (
            El("status", fixed="completed"),
            El("category", min=1, max="1", fixed=_cc("communication-category", "serious-incident-notification")),
            El("reasonCode", min=1, binding="reg40-category", short="Regulation 40 category"),
            El("subject", targets=("SGX-Child",)),
            El("about", min=1, targets=("SGX-SeriousIncident", "SGX-Setting")),
            El("sent", min=1),
            *_participant("sender", "The provider"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-SeriousIncident", "AdverseEvent", "Serious incident",
        "What happened, when and where.",
        (
            El("event", binding="reg40-category"),
            El("category", binding="incident-aspect", short="health-related routes to the host ICB"),
            El("subject", targets=("SGX-Child",)),
            El("date", min=1, short="When the incident happened"),
            El("location", min=1, targets=("SGX-Setting",)),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-StaffRole", "PractitionerRole", "Staff member's role",
        "The role of the person an allegation is about, identified by the employer's staff id.",
        (
            El("identifier", min=1),
            El("identifier:staffId", min=1, max="1", fixed={"system": cat.LOCAL_STAFF_ID}),
            El("identifier:staffId.value", min=1),
            El("practitioner", targets=("SGX-StaffMember",)),
            *_participant("organization", "The employer"),
            El("location", targets=("SGX-Setting",)),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-StaffMember", "Practitioner", "Staff member",
        "The person an allegation is about. Carried only in allegation messages, labelled allegation-detail.",
        (
            El("name", min=1),
            El("meta", min=1),
            El("meta.security", min=1, binding="security-labels"),
        ),
    ),
    Profile(
        "SGX-AllegationNotification", "Communication", "Allegation notification",
        "The host LADO's cross-boundary notification, about the referral Task and the setting.",
        (
            El("status", fixed="completed"),
            El("category", min=1, max="1", fixed=_cc("communication-category", "allegation-notification")),
            El("subject", targets=("SGX-Child",)),
            El("about", min=1, targets=("SGX-AllegationReferral", "SGX-Setting")),
            El("sent", min=1),
            *_participant("sender", "The host LADO"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-ConcernNotification", "Communication", "Concern notification",
        "A concern about a setting: whistleblowing, complaint, hospital referral or missing episode.",
        (
            El("status", fixed="completed"),
            El("category", min=1, max="1", binding="concern-type", short="Type of concern"),
            El("subject", targets=("SGX-Child",)),
            El("about", min=1, targets=("SGX-Setting",)),
            El("sent", min=1),
            *_participant("sender", "Who raised it"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-InspectionOutcome", "Communication", "Inspection outcome",
        "The regulator's overall judgement of a setting after an inspection.",
        (
            El("status", fixed="completed"),
            El("category", min=1, max="1", fixed=_cc("communication-category", "inspection-outcome")),
            El("reasonCode", min=1, max="1", binding="inspection-judgement", short="The overall judgement"),
            El("about", min=1, targets=("SGX-Setting",)),
            El("sent", min=1, short="When the report was published"),
            *_participant("sender", "The regulator"),
        ),
    ),
    Profile(
        "SGX-AllegationReferral", "Task", "Allegation referral",
        "A referral to the LADO: consider an allegation against a person who works with children.",
        (
            El("identifier", min=1),
            El("identifier:caseReference", min=1, max="1", fixed={"system": cat.CASE_REFERENCE},
               short="Reference the referrer and LADO share"),
            El("identifier:caseReference.value", min=1),
            El("intent", fixed="order"),
            El("code", min=1, fixed=_cc("task-code", "allegation-referral")),
            El("for", min=1, targets=("SGX-StaffRole",), short="The staff member's role"),
            *_participant("owner", "The LADO"),
            *_participant("requester", "Who referred"),
            El("authoredOn", min=1),
            El("location", min=1, targets=("SGX-Setting",)),
            El("input", min=1),
            El("input:category", min=1, max="1", fixed={"type": _cc("task-input-type", "allegation-category")}),
            El("input:category.valueCodeableConcept", min=1, binding="allegation-category"),
            El("input:child", fixed={"type": _cc("task-input-type", "child")}, short="Children involved"),
            El("input:child.valueReference", min=1, targets=("SGX-Child",)),
            El("input:summary", max="1", fixed={"type": _cc("task-input-type", "summary")}),
            El("input:summary.valueString", min=1),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-AllegationOutcome", "Task", "Allegation outcome",
        "The completed referral with the LADO's outcome.",
        (
            El("status", fixed="completed"),
            El("output", min=1),
            El("output:outcome", min=1, max="1", fixed={"type": _cc("task-input-type", "allegation-outcome")}),
            El("output:outcome.valueCodeableConcept", min=1, binding="allegation-outcome"),
        ),
        base="SGX-AllegationReferral",
    ),
    Profile(
        "SGX-Escalation", "Task", "Escalation",
        "A request to everyone responsible for a setting to review it under the escalation protocol.",
        (
            El("intent", fixed="order"),
            El("code", min=1, fixed=_cc("task-code", "escalation")),
            El("priority", min=1),
            El("reasonCode", min=1, binding="escalation-reason"),
            El("focus", min=1, targets=("SGX-Setting",)),
            *_participant("requester", "Who raised it (the exchange, for automatic escalations)"),
            El("authoredOn", min=1),
            El("input:rule", max="1", fixed={"type": _cc("task-input-type", "oversight-rule")},
               short="The published oversight rule crossed (automatic escalations)"),
            El("input:rule.valueCoding", min=1, short="Rule id as code, the rules' version as version"),
            El("input:window", max="1", fixed={"type": _cc("task-input-type", "window")},
               short="The window whose signals crossed the rule"),
            El("input:window.valuePeriod", min=1),
            El("input:signal", fixed={"type": _cc("task-input-type", "signal")},
               short="Each message that counted, by message id"),
            El("input:signal.valueIdentifier", min=1),
        ),
    ),
    Profile(
        "SGX-AckOutcome", "OperationOutcome", "Acknowledgement outcome",
        "The outcome carried by an acknowledgement: one issue per finding, coded from the acknowledgement codes.",
        (
            El("issue", min=1),
            El("issue.details", min=1),
            El("issue.details.coding", min=1, binding="ack-code"),
        ),
    ),
    Profile(
        "SGX-Decision", "Communication", "Decision",
        "What a recipient decided or did about the message it answers. It names no child: the message it "
        "answers does.",
        (
            El("status", fixed="completed"),
            El("category", min=1, max="1", fixed=_cc("communication-category", "decision")),
            El("reasonCode", min=1, max="1", binding="decision-code", short="The decision or action"),
            El("subject", max="0", short="Never: a response names no child"),
            El("recipient", max="0", short="Never: the exchange sends it to the original sender"),
            El("payload", short="The decision in the officer's words"),
            El("sent", min=1, short="When the decision was recorded"),
            *_participant("sender", "The deciding participant"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-InformationRequest", "Communication", "Request for more information",
        "A question to the sender of the message it answers. It names no child: the message it answers does.",
        (
            El("status", fixed="completed"),
            El("category", min=1, max="1", fixed=_cc("communication-category", "information-request")),
            El("subject", max="0", short="Never: a response names no child"),
            El("recipient", max="0", short="Never: the exchange sends it to the original sender"),
            El("payload", min=1, short="The question"),
            El("payload.contentString", min=1),
            El("sent", min=1),
            *_participant("sender", "Who asks"),
            SECURITY,
        ),
    ),
    Profile(
        "SGX-Provenance", "Provenance", "Provenance",
        "Who created or changed the focus resources, for attestation inside the message.",
        (
            El("target", min=1, targets=("*",)),
            El("recorded", min=1),
            El("agent", min=1),
            El("agent.who", logical=True),
        ),
    ),
]


def _report(profile_id: str, title: str, questionnaire: str, regulation: str) -> Profile:
    return Profile(
        profile_id, "QuestionnaireResponse", title,
        f"The {regulation} report as answers to the published {regulation} Questionnaire.",
        (
            El("questionnaire", min=1, fixed=cat.questionnaire_url(questionnaire)),
            El("status", fixed="completed"),
            El("subject", min=1, targets=("SGX-Setting",), short="The setting"),
            El("authored", min=1),
            *_participant("author", "The provider or independent person's organisation"),
            El("item", min=1),
            SECURITY,
        ),
    )


_PROFILES += [
    _report("SGX-VisitReport", "Independent person's visit report", "reg44-visit-report", "Regulation 44"),
    _report("SGX-QualityReview", "Quality of care review", "reg45-quality-review", "Regulation 45"),
]

PROFILES: dict[str, Profile] = {p.id: p for p in _PROFILES}


def effective_elements(profile_id: str) -> tuple[El, ...]:
    """A profile's constraints merged with those of its parents (the child's word wins, field by field)."""
    profile = PROFILES[profile_id]
    inherited = list(effective_elements(profile.base)) if profile.base else []
    by_path = {e.path: i for i, e in enumerate(inherited)}
    for own in profile.elements:
        if own.path in by_path:
            parent = inherited[by_path[own.path]]
            changes = {k: v for k, v in own.__dict__.items() if v not in (None, (), False, "", "required")}
            inherited[by_path[own.path]] = replace(parent, **changes)
        else:
            by_path[own.path] = len(inherited)
            inherited.append(own)
    return tuple(inherited)


@dataclass(frozen=True)
class Question:
    link_id: str
    text: str
    type: str
    required: bool = False
    options: tuple[str, ...] = field(default_factory=tuple)


_JUDGEMENT = ("yes", "partly", "no")

QUESTIONNAIRES: dict[str, tuple[str, str, tuple[Question, ...]]] = {
    "reg44-visit-report": (
        "Regulation 44 independent person's visit report",
        "Children's Homes (England) Regulations 2015, regulation 44.",
        (
            Question("visit-date", "Date of the visit", "date", True),
            Question("visit-announced", "Was the visit announced?", "boolean", True),
            Question("children-spoken-to", "Number of children spoken to (with their consent)", "integer", True),
            Question("staff-spoken-to", "Number of staff spoken to", "integer"),
            Question("records-checked", "Records checked", "string"),
            Question("children-safeguarded", "Are children effectively safeguarded?", "choice", True, _JUDGEMENT),
            Question("wellbeing-promoted", "Does the conduct of the home promote children's wellbeing?",
                     "choice", True, _JUDGEMENT),
            Question("concerns", "Concerns found", "string"),
            Question("recommendations", "Recommendations", "string"),
        ),
    ),
    "reg45-quality-review": (
        "Regulation 45 review of the quality of care",
        "Children's Homes (England) Regulations 2015, regulation 45.",
        (
            Question("review-period-start", "Start of the period reviewed", "date", True),
            Question("review-period-end", "End of the period reviewed", "date", True),
            Question("quality-standards", "How the home meets the quality standards", "text", True),
            Question("children-views", "Feedback and views of children", "text"),
            Question("placing-authority-views", "Feedback of placing authorities", "text"),
            Question("actions", "Actions the registered person will take", "text", True),
        ),
    ),
}
