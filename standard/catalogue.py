"""The message catalogue: the one registry of events, routing roles and requirements.

Every other part of the project (validator, generators, broker, adapters,
conformance, docs) reads this module; none keeps its own list of message types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

CANONICAL = "https://safeguarding-exchange.org.uk/fhir"
VERSION = "0.1.0"
PACKAGE_NAME = "uk.safeguarding-exchange.r4"
FHIR_VERSION = "4.0.1"

# Identifier systems. National ones follow UK Core; ours are published as NamingSystems.
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
OFSTED_URN = f"{CANONICAL}/Id/ofsted-urn"
OFSTED_URN_FORM = r"SC\d{6}|\d{7}"  # a children's social care URN (SC and 6 digits) or an older 7-digit one
DFE_LA_CODE = f"{CANONICAL}/Id/dfe-la-code"
ONS_GSS_CODE = f"{CANONICAL}/Id/ons-gss-code"
CQC_LOCATION_ID = f"{CANONICAL}/Id/cqc-location-id"
POLICE_FORCE_CODE = f"{CANONICAL}/Id/police-force-code"
PARTICIPANT_ID = f"{CANONICAL}/Id/participant"
LOCAL_CHILD_ID = f"{CANONICAL}/Id/local-child-id"
CHILD_PSEUDONYM = f"{CANONICAL}/Id/child-pseudonym"
LOCAL_STAFF_ID = f"{CANONICAL}/Id/local-staff-id"
CASE_REFERENCE = f"{CANONICAL}/Id/case-reference"
MESSAGE_ID_SYSTEM = "urn:ietf:rfc:3986"


def code_system_url(name: str) -> str:
    """Canonical URL of one of our CodeSystems."""
    return f"{CANONICAL}/CodeSystem/{name}"


def value_set_url(name: str) -> str:
    """Canonical URL of one of our ValueSets."""
    return f"{CANONICAL}/ValueSet/{name}"


def profile_url(profile_id: str) -> str:
    """Canonical URL of one of our StructureDefinitions."""
    return f"{CANONICAL}/StructureDefinition/{profile_id}"


def message_definition_url(event_code: str) -> str:
    """Canonical URL of the MessageDefinition for an event."""
    return f"{CANONICAL}/MessageDefinition/{event_code}"


def questionnaire_url(questionnaire_id: str) -> str:
    """Canonical URL of one of our Questionnaires."""
    return f"{CANONICAL}/Questionnaire/{questionnaire_id}"


@dataclass(frozen=True)
class Role:
    """A routing role: who a participant is in relation to a message."""

    code: str
    display: str
    definition: str


ROLES: tuple[Role, ...] = (
    Role("placing-la", "Placing local authority",
         "The local authority responsible for the child (the authority that placed the child)."),
    Role("placing-lado", "LADO of a placing local authority",
         "The Local Authority Designated Officer of the authority that placed the child."),
    Role("host-la", "Host local authority",
         "The local authority in whose area the setting is."),
    Role("host-lado", "Host LADO",
         "The Local Authority Designated Officer of the host local authority."),
    Role("host-icb", "Host integrated care board",
         "The NHS integrated care board for the setting's area."),
    Role("regulator", "Regulator",
         "Ofsted and/or CQC, as the setting's registration requires."),
    Role("police", "Police force",
         "The police force for the setting's area."),
    Role("provider", "Provider",
         "The registered provider that runs the setting."),
    Role("original-sender", "Original sender",
         "The participant that sent the message a response answers (a business acknowledgement, a decision, a "
         "request for more information); resolved from the exchange's record of what it routed."),
    Role("router", "Exchange router",
         "The exchange itself: it sends infrastructure acknowledgements and automatic escalations."),
    Role("any", "Any participant",
         "Any participant listed in the directory."),
)
ROLE_CODES = frozenset(r.code for r in ROLES)


@dataclass(frozen=True)
class Recipient:
    """One routing rule of an event: which role receives it, for what, and when.

    Attributes:
        role: routing role code.
        of: what the role is resolved from: "setting" (the setting's host LA, ICB,
            regulators, police), "child" (the placing LA of the child the message
            names), "children-at-setting" (every placing LA with a child at the
            setting now, each told only of its own children) or "sender" (the
            sender of the message a response answers, and only if the
            responder was one of its recipients).
        condition: when set, the role receives the message only if the condition
            holds (named conditions are documented in docs/standard/routing.md).
    """

    role: str
    of: str = "setting"
    condition: str | None = None


@dataclass(frozen=True)
class Event:
    """One message type of the catalogue."""

    code: str
    display: str
    purpose: str
    category: str  # MessageDefinition.category: notification | consequence | currency
    senders: tuple[str, ...]
    recipients: tuple[Recipient, ...]
    focus_profile: str
    required_profiles: tuple[str, ...]
    optional_profiles: tuple[str, ...]
    legal_basis: str
    timeliness: str
    deadline: str | None  # ISO 8601 duration from the event to the message, where the law sets one
    sensitivity: tuple[str, ...]
    requirements: tuple[str, ...]
    response_required: str = "always"
    header_profile: str = "SGX-MessageHeader"
    # Working days in England after the day of delivery by whose end each recipient should acknowledge the message
    # (a person has read it); past it the message is overdue on both sides. None: no acknowledgement is expected.
    acknowledge_working_days: int | None = 1

    @property
    def responds(self) -> bool:
        """Whether this event answers an earlier message (routed back to that message's sender)."""
        return any(r.of == "sender" for r in self.recipients)

    def acknowledge_by(self, delivered: datetime) -> datetime | None:
        """When a message of this event delivered at `delivered` becomes overdue if nobody acknowledged it."""
        if self.acknowledge_working_days is None:
            return None
        from standard.workdays import end_of, working_days_after

        # Not strict: beyond the years whose bank holidays are shipped only weekends are skipped (a day out at most).
        return end_of(working_days_after(delivered.astimezone(UTC).date(), self.acknowledge_working_days,
                                         strict=False))

    @property
    def definition_url(self) -> str:
        return message_definition_url(self.code)

    @property
    def schema_id(self) -> str:
        return f"{CANONICAL}/schema/{self.code}.schema.json"


_PLACEMENT_REQ = ("MSG-001", "MSG-002", "MSG-003", "MSG-004", "MSG-005", "MSG-006", "MSG-007", "MSG-008",
                  "CHD-001", "CHD-002", "PLC-001", "PLC-002", "PLC-003", "PLC-004", "PLC-005")
_COMMON_REQ = ("MSG-001", "MSG-002", "MSG-003", "MSG-004", "MSG-005", "MSG-006", "MSG-007", "MSG-008")

EVENTS: tuple[Event, ...] = (
    Event(
        code="placement-started", display="Placement started",
        purpose="Tells the host local authority and host ICB that a looked-after child now lives at a "
                "setting in their area, and keeps the register of children living away from home.",
        category="notification",
        senders=("placing-la",),
        recipients=(Recipient("host-la"), Recipient("host-icb")),
        focus_profile="SGX-Placement",
        required_profiles=("SGX-Child", "SGX-LookedAfterEpisode", "SGX-Setting"),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Care Planning, Placement and Case Review (England) Regulations 2010, reg 13 "
                    "(notify the area authority); Child Safeguarding Practice Review Panel 2023, recommendation 8 "
                    "(register of children living away from home).",
        timeliness="Before the placement starts or, in an emergency, within 5 working days of it.",
        deadline="P5D",
        sensitivity=("confidential-placement",),
        requirements=_PLACEMENT_REQ,
        acknowledge_working_days=5,
    ),
    Event(
        code="placement-changed", display="Placement changed",
        purpose="Corrects or updates a placement already notified (legal status, provider, dates) without "
                "a move; a move to another setting is placement-ended followed by placement-started.",
        category="notification",
        senders=("placing-la",),
        recipients=(Recipient("host-la"), Recipient("host-icb")),
        focus_profile="SGX-Placement",
        required_profiles=("SGX-Child", "SGX-LookedAfterEpisode", "SGX-Setting"),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Care Planning, Placement and Case Review (England) Regulations 2010, reg 13.",
        timeliness="Within 5 working days of the change.",
        deadline="P5D",
        sensitivity=("confidential-placement",),
        requirements=_PLACEMENT_REQ,
        acknowledge_working_days=5,
    ),
    Event(
        code="placement-ended", display="Placement ended",
        purpose="Tells the host local authority and host ICB that a child no longer lives at the setting, "
                "with the reason, so the register stays true.",
        category="notification",
        senders=("placing-la",),
        recipients=(Recipient("host-la"), Recipient("host-icb")),
        focus_profile="SGX-PlacementEnded",
        required_profiles=("SGX-Child", "SGX-LookedAfterEpisode", "SGX-Setting"),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Care Planning, Placement and Case Review (England) Regulations 2010, reg 13.",
        timeliness="Within 5 working days of the placement ending.",
        deadline="P5D",
        sensitivity=("confidential-placement",),
        requirements=_PLACEMENT_REQ + ("PLC-006",),
        acknowledge_working_days=5,
    ),
    Event(
        code="serious-incident", display="Serious incident (Regulation 40)",
        purpose="The provider's notification of a serious event at a children's home.",
        category="notification",
        senders=("provider",),
        recipients=(Recipient("regulator"), Recipient("placing-la", of="child"), Recipient("host-la"),
                    Recipient("host-icb", condition="health-related")),
        focus_profile="SGX-SeriousIncidentNotification",
        required_profiles=("SGX-SeriousIncident", "SGX-Child", "SGX-Setting"),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Children's Homes (England) Regulations 2015, regulation 40.",
        timeliness="Without delay (reg 40(1)).",
        deadline="P1D",
        sensitivity=("allegation-detail",),
        requirements=_COMMON_REQ + ("INC-001", "INC-002", "PLC-001"),
    ),
    Event(
        code="independent-visitor-report", display="Independent person's visit report (Regulation 44)",
        purpose="The monthly report of the independent person's visit, shared with everyone responsible "
                "for children at the setting.",
        category="notification",
        senders=("provider",),
        recipients=(Recipient("regulator"), Recipient("host-la"), Recipient("host-icb"),
                    Recipient("placing-la", of="children-at-setting")),
        focus_profile="SGX-VisitReport",
        required_profiles=("SGX-Setting",),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Children's Homes (England) Regulations 2015, regulation 44; Child Safeguarding Practice "
                    "Review Panel 2023, paragraph 6.4.",
        timeliness="Monthly; a copy within 10 days of the end of the month of the visit.",
        deadline="P10D",
        sensitivity=(),
        requirements=_COMMON_REQ + ("RPT-001", "PLC-001"),
        acknowledge_working_days=10,
    ),
    Event(
        code="quality-of-care-review", display="Quality of care review (Regulation 45)",
        purpose="The registered person's six-monthly review of the quality of care at the setting.",
        category="notification",
        senders=("provider",),
        recipients=(Recipient("regulator"), Recipient("host-la"), Recipient("host-icb"),
                    Recipient("placing-la", of="children-at-setting", condition="on-request")),
        focus_profile="SGX-QualityReview",
        required_profiles=("SGX-Setting",),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Children's Homes (England) Regulations 2015, regulation 45.",
        timeliness="At least every 6 months; a copy to the regulator within 28 days of completing the review.",
        deadline="P28D",
        sensitivity=(),
        requirements=_COMMON_REQ + ("RPT-002", "PLC-001"),
        acknowledge_working_days=28,
    ),
    Event(
        code="allegation-referral", display="Allegation referral to the LADO",
        purpose="Refers an allegation against a person who works with children to the LADO of the area "
                "where the setting is.",
        category="consequence",
        senders=("any",),
        recipients=(Recipient("host-lado"),),
        focus_profile="SGX-AllegationReferral",
        required_profiles=("SGX-StaffRole", "SGX-Setting"),
        optional_profiles=("SGX-Child", "SGX-StaffMember", "SGX-Organization", "SGX-Provenance"),
        legal_basis="Working Together to Safeguard Children 2023, chapter 4 (LADO duties); "
                    "Children Act 2004 s11.",
        timeliness="Within one working day of the allegation being made.",
        deadline="P1D",
        sensitivity=("allegation-detail", "whistleblower-identity"),
        requirements=_COMMON_REQ + ("ALG-001", "PLC-001"),
    ),
    Event(
        code="allegation-notification", display="Cross-boundary allegation notification",
        purpose="The host LADO tells the LADO and children's services of every placing authority with a "
                "child at the setting, and the regulator, that an allegation is being managed.",
        category="notification",
        senders=("host-lado",),
        recipients=(Recipient("placing-lado", of="children-at-setting"),
                    Recipient("placing-la", of="children-at-setting"), Recipient("regulator")),
        focus_profile="SGX-AllegationNotification",
        required_profiles=("SGX-AllegationReferral", "SGX-StaffRole", "SGX-Setting"),
        optional_profiles=("SGX-StaffMember", "SGX-Provenance"),
        legal_basis="Working Together to Safeguard Children 2023; Child Safeguarding Practice Review Panel "
                    "2023, paragraph 6.6 and Annex D.",
        timeliness="Within one working day of the LADO's initial consideration.",
        deadline="P1D",
        sensitivity=("allegation-detail",),
        requirements=_COMMON_REQ + ("ALG-003", "PLC-001"),
    ),
    Event(
        code="allegation-outcome", display="Allegation outcome",
        purpose="The host LADO records the outcome of an allegation and tells everyone who was notified.",
        category="notification",
        senders=("host-lado",),
        recipients=(Recipient("placing-lado", of="children-at-setting"),
                    Recipient("placing-la", of="children-at-setting"), Recipient("regulator")),
        focus_profile="SGX-AllegationOutcome",
        required_profiles=("SGX-StaffRole", "SGX-Setting"),
        optional_profiles=("SGX-StaffMember", "SGX-Provenance"),
        legal_basis="Working Together to Safeguard Children 2023; Keeping Children Safe in Education, "
                    "Part 4 (outcome definitions).",
        timeliness="Within 5 working days of the outcome being decided.",
        deadline="P5D",
        sensitivity=("allegation-detail",),
        requirements=_COMMON_REQ + ("ALG-002", "PLC-001"),
    ),
    Event(
        code="concern-notification", display="Concern notification",
        purpose="A whistleblowing report, complaint, hospital referral or missing episode that concerns a "
                "setting, so the signs that used to sit in separate systems meet.",
        category="notification",
        senders=("regulator", "provider", "any"),
        recipients=(Recipient("host-la"), Recipient("host-icb"), Recipient("placing-la", of="child")),
        focus_profile="SGX-ConcernNotification",
        required_profiles=("SGX-Setting",),
        optional_profiles=("SGX-Child", "SGX-Organization", "SGX-Provenance"),
        legal_basis="Child Safeguarding Practice Review Panel 2023, paragraph 6.4; Public Interest "
                    "Disclosure Act 1998 (whistleblowing).",
        timeliness="Within one working day of the concern being received.",
        deadline="P1D",
        sensitivity=("whistleblower-identity",),
        requirements=_COMMON_REQ + ("CON-001", "PLC-001"),
    ),
    Event(
        code="inspection-outcome", display="Inspection outcome",
        purpose="The regulator's overall judgement after inspecting a setting, so everyone responsible for "
                "children there knows it and the host authority's oversight counts it with the other signs.",
        category="notification",
        senders=("regulator",),
        recipients=(Recipient("host-la"), Recipient("host-icb"), Recipient("placing-la", of="children-at-setting")),
        focus_profile="SGX-InspectionOutcome",
        required_profiles=("SGX-Setting",),
        optional_profiles=("SGX-Organization", "SGX-Provenance"),
        legal_basis="Care Standards Act 2000 (inspection of registered children's homes); Ofsted's Social Care "
                    "Common Inspection Framework (the judgements); Child Safeguarding Practice Review Panel 2023, "
                    "paragraph 6.1.",
        timeliness="When the inspection report is published.",
        deadline=None,
        sensitivity=(),
        requirements=_COMMON_REQ + ("INS-001", "PLC-001"),
    ),
    Event(
        code="escalation", display="Escalation",
        purpose="Raises concern about a setting to everyone responsible for it, by a person or "
                "automatically when the signals about the setting cross a threshold.",
        category="consequence",
        senders=("any", "router"),
        recipients=(Recipient("host-la"), Recipient("host-lado"), Recipient("host-icb"), Recipient("regulator"),
                    Recipient("placing-la", of="children-at-setting")),
        focus_profile="SGX-Escalation",
        required_profiles=("SGX-Setting",),
        optional_profiles=("SGX-Provenance",),
        legal_basis="Child Safeguarding Practice Review Panel 2023, recommendation 8 (national protocol for "
                    "information sharing and escalation).",
        timeliness="As soon as the threshold is crossed.",
        deadline=None,
        sensitivity=(),
        requirements=_COMMON_REQ + ("ESC-001", "PLC-001"),
    ),
    Event(
        code="acknowledgement", display="Acknowledgement",
        purpose="Tells a sender that its message was accepted or rejected by the exchange "
                "(infrastructure), or by a recipient (business): its node stored it, a person read it, a "
                "person acknowledged it.",
        category="notification",
        senders=("router", "any"),
        recipients=(Recipient("original-sender", of="sender"),),
        focus_profile="SGX-AckOutcome",
        required_profiles=(),
        optional_profiles=(),
        legal_basis="Exchange rules: every message is acknowledged.",
        timeliness="Infrastructure acknowledgement on routing; business acknowledgement within 1 working day.",
        deadline="P1D",
        sensitivity=(),
        requirements=_COMMON_REQ + ("ACK-001", "RSP-001", "RSP-002"),
        response_required="never",
        header_profile="SGX-AckMessageHeader",
        acknowledge_working_days=None,
    ),
    Event(
        code="decision-recorded", display="Decision recorded",
        purpose="A recipient tells the sender what it decided or did about a message: for a LADO, whether the "
                "threshold was met and a strategy meeting held, advice only, no further action or a referral "
                "to the police; for a host local authority or ICB, the actions it takes.",
        category="consequence",
        senders=("any",),
        recipients=(Recipient("original-sender", of="sender"),),
        focus_profile="SGX-Decision",
        required_profiles=(),
        optional_profiles=(),
        legal_basis="Working Together to Safeguard Children 2023 (recording LADO decisions); Child Safeguarding "
                    "Practice Review Panel 2023, paragraph 6.6 (every step accountable, to the sender too).",
        timeliness="When the decision is made.",
        deadline=None,
        sensitivity=(),
        requirements=_COMMON_REQ + ("RSP-001", "RSP-002", "DEC-001"),
        response_required="never",
        header_profile="SGX-ResponseMessageHeader",
        acknowledge_working_days=None,
    ),
    Event(
        code="information-request", display="Request for more information",
        purpose="A recipient asks the sender of a message for more information about it.",
        category="consequence",
        senders=("any",),
        recipients=(Recipient("original-sender", of="sender"),),
        focus_profile="SGX-InformationRequest",
        required_profiles=(),
        optional_profiles=(),
        legal_basis="Child Safeguarding Practice Review Panel 2023, paragraph 6.4 (information shared and "
                    "acted on).",
        timeliness="As soon as the need is known; the sender answers within 1 working day.",
        deadline=None,
        sensitivity=(),
        requirements=_COMMON_REQ + ("RSP-001", "RSP-002", "INF-001"),
        response_required="on-error",
        header_profile="SGX-ResponseMessageHeader",
        acknowledge_working_days=1,
    ),
)

EVENTS_BY_CODE: dict[str, Event] = {e.code: e for e in EVENTS}


def get_event(code: str) -> Event:
    """Return the event with this code.

    Raises:
        KeyError: with a suggestion when the code is unknown.
    """
    try:
        return EVENTS_BY_CODE[code]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(code, EVENTS_BY_CODE, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known events: {', '.join(EVENTS_BY_CODE)}"
        raise KeyError(f"unknown event {code!r}{hint}") from None


@dataclass(frozen=True)
class Requirement:
    """A numbered requirement of the standard. Findings and conformance checks cite these ids."""

    id: str
    text: str
    findings: tuple[str, ...] = field(default_factory=tuple)


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("MSG-001", "A message SHALL be a FHIR R4 Bundle of type 'message' with a unique identifier "
                "(urn:uuid) and a timestamp no later than the time it is sent.",
                ("json-invalid", "profile-cardinality", "profile-fixed-value", "timestamp-out-of-window")),
    Requirement("MSG-002", "The first entry SHALL be the MessageHeader (bdl-12).", ("bdl-12",)),
    Requirement("MSG-003", "Every entry SHALL have a unique urn:uuid fullUrl (bdl-7), and no two resources of a type "
                "the same id.", ("bdl-7", "profile-format", "resource-id-duplicate")),
    Requirement("MSG-004", "MessageHeader.eventCoding SHALL be an event of the catalogue and "
                "MessageHeader.definition SHALL be that event's MessageDefinition.",
                ("profile-binding", "profile-fixed-value", "event-unknown")),
    Requirement("MSG-005", "Every resource named in MessageHeader.focus SHALL be in the Bundle, and be of the "
                "event's focus type.", ("focus-missing", "ref-target-type")),
    Requirement("MSG-006", "Every reference between entries SHALL resolve inside the Bundle to a resource of an "
                "allowed type.", ("ref-unresolved", "ref-target-type")),
    Requirement("MSG-007", "MessageHeader.sender SHALL identify a participant by its participant identifier.",
                ("profile-cardinality", "profile-fixed-value")),
    Requirement("MSG-008", "Every resource SHALL conform to FHIR R4 and to its profile, and SHALL NOT contain "
                "other resources.",
                ("fhir-structure", "contained-not-allowed", "profile-cardinality", "profile-binding", "profile-format",
                 "profile-unexpected-resource", "profile-type")),
    Requirement("MSG-009", "Security labels SHALL come from the exchange's security label value set.",
                ("profile-binding",)),
    Requirement("CHD-001", "A child SHALL carry the placing authority's local child identifier, a birth date and "
                "an administrative gender; the birth date SHALL NOT be in the future.",
                ("profile-cardinality", "date-in-future")),
    Requirement("CHD-002", "An NHS number, where given, SHALL be 10 digits with a valid modulus 11 check digit.",
                ("nhs-number-invalid", "profile-format")),
    Requirement("PLC-001", "A setting SHALL carry its Ofsted URN in the form SC followed by 6 digits, or 7 digits.",
                ("ofsted-urn-invalid", "profile-cardinality")),
    Requirement("PLC-002", "The placement type SHALL come from the SSDA903 placement type list.",
                ("profile-binding",)),
    Requirement("PLC-003", "The legal status SHALL come from the SSDA903 legal status list.", ("profile-binding",)),
    Requirement("PLC-004", "The placing authority SHALL be identified by a known DfE LA code; an ICB by a known "
                "ICB ODS code; every ODS code SHALL be 3 to 6 upper-case letters and digits.",
                ("la-code-unknown", "icb-code-unknown", "ods-code-invalid")),
    Requirement("PLC-005", "No period SHALL end before it starts.", ("period-order",)),
    Requirement("PLC-006", "An ended placement SHALL have status finished, an end date and a reason.",
                ("profile-cardinality", "profile-fixed-value")),
    Requirement("INC-001", "A serious incident SHALL state its Regulation 40 category.",
                ("profile-cardinality", "profile-binding")),
    Requirement("INC-002", "A serious incident SHALL name the setting and the date it happened, and SHALL NOT be "
                "dated after it was notified or in the future.",
                ("profile-cardinality", "incident-after-notification", "date-in-future")),
    Requirement("RPT-001", "A Regulation 44 report SHALL answer the Regulation 44 Questionnaire.",
                ("profile-fixed-value", "questionnaire-item-unknown")),
    Requirement("RPT-002", "A Regulation 45 review SHALL answer the Regulation 45 Questionnaire.",
                ("profile-fixed-value", "questionnaire-item-unknown")),
    Requirement("ALG-001", "An allegation referral SHALL name the staff member's role, the setting, the category "
                "of allegation and the LADO that owns it.", ("profile-cardinality", "profile-binding")),
    Requirement("ALG-002", "An allegation outcome SHALL be one of substantiated, unsubstantiated, unfounded, false "
                "or malicious.", ("profile-binding", "profile-cardinality")),
    Requirement("ALG-003", "An allegation notification SHALL be about the referral Task it reports.",
                ("profile-cardinality", "ref-target-type")),
    Requirement("CON-001", "A concern notification SHALL state the type of concern and the setting.",
                ("profile-cardinality", "profile-binding")),
    Requirement("INS-001", "An inspection outcome SHALL state the regulator's overall judgement and the setting.",
                ("profile-cardinality", "profile-binding")),
    Requirement("ESC-001", "An escalation SHALL state its reason, priority and the setting.",
                ("profile-cardinality", "profile-binding")),
    Requirement("ACK-001", "An acknowledgement SHALL name the message it answers and carry an outcome with codes "
                "from the acknowledgement code system.", ("profile-cardinality", "profile-binding")),
    Requirement("RSP-001", "A response (acknowledgement, decision, request for more information) SHALL name the "
                "message it answers in MessageHeader.response.identifier. The exchange SHALL route it to that "
                "message's sender only, and SHALL refuse it (unauthorised-sender) from a participant that was "
                "not a recipient of that message.", ("profile-cardinality",)),
    Requirement("RSP-002", "A response SHALL NOT name a child: the message it answers already does, and the "
                "sender may not have been told of another.", ("profile-cardinality",)),
    Requirement("DEC-001", "A decision SHALL carry one code from the decision codes and SHALL say when it was "
                "made.", ("profile-cardinality", "profile-binding")),
    Requirement("INF-001", "A request for more information SHALL carry the question asked.",
                ("profile-cardinality",)),
    Requirement("SIG-001", "Every message SHALL be signed by its sender as a detached compact JWS (EdDSA, Ed25519; "
                "typ sgx-message+jws; kid, iss, jti equal to Bundle.identifier, sgx-evt and iat) over the exact bytes "
                "sent, carried in the sgx-signature header with the sender's id in sgx-sender."),
    Requirement("SIG-002", "A receiving system SHALL verify the sender's signature and the router's delivery note "
                "with keys from the signed directory, and SHALL NOT accept a message whose signature does not verify "
                "or whose key is unknown, revoked or expired."),
    Requirement("RCV-001", "A receiving system SHALL answer every message it takes from its queue with one signed "
                "business acknowledgement (received, or rejected with a reason) within the acknowledgement event's "
                "deadline, and SHALL stay available while doing so."),
    Requirement("RCV-002", "A receiving system SHALL hold a message durably before acknowledging it, and SHALL hold "
                "and acknowledge a message id once however often it is delivered."),
    Requirement("RCV-003", "A receiving system SHALL reject, with a reason, a message of an event or an event version "
                "it does not know, and SHALL accept placement events in whatever order they arrive."),
    Requirement("SND-001", "A sending system SHALL give every message an id of its own, keep that id when it sends "
                "the same message again after an unconfirmed or refused publish, and SHALL NOT send a message again "
                "once the exchange has accepted it."),
    Requirement("SND-002", "A sending system SHALL stop sending a message the exchange has rejected, and SHALL "
                "report the rejection and its reason to its user."),
)
REQUIREMENTS_BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}
