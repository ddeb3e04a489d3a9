"""Code systems and value sets of the standard, defined once and read by the generators and the validator."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from standard import catalogue as cat

SOURCE = Path(__file__).parent / "source"

V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"
ENCOUNTER_STATUS = "http://hl7.org/fhir/encounter-status"


@dataclass(frozen=True)
class Concept:
    code: str
    display: str
    definition: str = ""
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CodeSystem:
    """A code system: ours (published in the package) or external (referenced only)."""

    id: str
    title: str
    description: str
    concepts: tuple[Concept, ...]
    url: str = ""
    external: bool = False

    @property
    def canonical(self) -> str:
        return self.url or cat.code_system_url(self.id)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.concepts)


@dataclass(frozen=True)
class ValueSet:
    """A value set: whole code systems, or chosen codes of them."""

    id: str
    title: str
    description: str
    includes: tuple[tuple[str, tuple[str, ...]], ...]  # (code system id, codes or () for all)
    url: str = ""
    external: bool = False

    @property
    def canonical(self) -> str:
        return self.url or cat.value_set_url(self.id)


def _concepts(*rows: tuple[str, str, str]) -> tuple[Concept, ...]:
    return tuple(Concept(code, display, definition) for code, display, definition in rows)


def _ssda903(field_prefix: str) -> tuple[Concept, ...]:
    with open(SOURCE / "terminology" / "ssda903_codelists.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["field"].split()[0] == field_prefix]
    concepts = []
    for r in rows:
        validity = []
        if r["valid_from_collection"]:
            validity.append(("validFrom", r["valid_from_collection"]))
        if r["valid_to_collection"]:
            validity.append(("validTo", r["valid_to_collection"]))
        concepts.append(Concept(r["code"], r["meaning"], r["notes"], tuple(validity)))
    return tuple(concepts)


def _dfe_las() -> tuple[Concept, ...]:
    concepts: dict[str, Concept] = {}
    with open(SOURCE / "reference" / "dfe_las.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            # Combined rows ("940 / 941") describe two authorities; split them.
            codes = [c.strip() for c in row["old_la_code"].split("/")]
            gss = [g.strip() for g in row["new_la_code"].split("/")]
            names = [n.strip() for n in row["la_name"].split(" / ")]
            for i, code in enumerate(codes):
                if not (len(code) == 3 and code.isdigit()):
                    continue
                props = [("gss", gss[i] if i < len(gss) else gss[0]), ("status", row["status"])]
                name = names[i] if i < len(names) else row["la_name"]
                current = concepts.get(code)
                # The same 3-digit code can appear for a terminated and a live GSS code; keep the live one.
                if current is None or dict(current.properties).get("status") != "live":
                    concepts[code] = Concept(code, name, "", tuple(props))
    return tuple(sorted(concepts.values(), key=lambda c: c.code))


def _icbs() -> tuple[Concept, ...]:
    with open(SOURCE / "reference" / "nhs_icb_list.csv", newline="", encoding="utf-8") as fh:
        return tuple(
            Concept(r["icb_ods_code"], r["icb_name"].title().replace("Nhs", "NHS"), "", (("gss", r["icb_gss_code"]),))
            for r in sorted(csv.DictReader(fh), key=lambda r: r["icb_ods_code"])
        )


@cache
def code_systems() -> dict[str, CodeSystem]:
    """Every code system the standard uses, by id."""
    systems = [
        CodeSystem("event", "Safeguarding Exchange message events",
                   "The events of the message catalogue.",
                   tuple(Concept(e.code, e.display, e.purpose) for e in cat.EVENTS)),
        CodeSystem("routing-role", "Routing roles",
                   "Who a participant is in relation to a message; the exchange resolves roles to participants.",
                   tuple(Concept(r.code, r.display, r.definition) for r in cat.ROLES)),
        CodeSystem("participant-kind", "Participant kinds", "The kinds of organisation in the directory.", _concepts(
            ("la-childrens-services", "Local authority children's services", "Identified by DfE LA code."),
            ("lado", "Local Authority Designated Officer", "The LADO service of a local authority."),
            ("icb", "Integrated care board", "Identified by ODS code."),
            ("ofsted", "Ofsted", "Regulator of children's homes and residential special schools."),
            ("cqc", "Care Quality Commission", "Regulator of health and adult social care settings."),
            ("police-force", "Police force", "A territorial police force."),
            ("provider", "Registered provider", "An organisation that runs one or more settings."),
            ("operator", "Scheme operator", "The national operator of the exchange."),
        )),
        CodeSystem("reg40-category", "Regulation 40 serious event categories",
                   "The events of the Children's Homes (England) Regulations 2015, regulation 40, that a "
                   "registered person must notify (paraphrased; the regulation is authoritative).", _concepts(
                       ("40-1-death", "Death of a child", "Reg 40(1): the death of a child in the home."),
                       ("40-3-svga-referral", "Referral to the DBS",
                        "Reg 40(3): a referral of a person working at the home under section 35 of the "
                        "Safeguarding Vulnerable Groups Act 2006."),
                       ("40-4-a-sexual-exploitation", "Child sexual exploitation",
                        "Reg 40(4)(a): a child's involvement or suspected involvement in sexual exploitation."),
                       ("40-4-b-police-incident", "Serious incident needing police",
                        "Reg 40(4)(b): an incident requiring police involvement that the registered person "
                        "considers serious."),
                       ("40-4-c-serious-complaint", "Serious complaint or allegation",
                        "Reg 40(4)(c): a serious complaint about the home or a person working there."),
                       ("40-4-d-child-protection-enquiry", "Child protection enquiry",
                        "Reg 40(4)(d): an instance of a child protection enquiry involving a child or staff."),
                       ("40-4-e-other-serious-incident", "Other serious incident",
                        "Reg 40(4)(e): any other incident relating to a child that the registered person "
                        "considers serious."),
                   )),
        CodeSystem("incident-aspect", "Incident aspects",
                   "Aspects of a serious incident that change who must be told.", _concepts(
                       ("health-related", "Health-related",
                        "The incident involved injury, illness, hospital attendance or medication: the host "
                        "ICB is told."),
                       ("restraint", "Restraint used", "Physical intervention or restraint was used."),
                       ("missing", "Child missing", "The incident involved a child going missing."),
                   )),
        CodeSystem("allegation-category", "Allegation categories",
                   "The harm test of Working Together 2023: what the person is alleged to have done.", _concepts(
                       ("physical-abuse", "Physical abuse", "Behaved in a way that has harmed a child physically."),
                       ("sexual-abuse", "Sexual abuse", "Sexual harm to a child, or a sexual offence."),
                       ("emotional-abuse", "Emotional abuse", "Emotional harm to a child."),
                       ("neglect", "Neglect", "Failure to meet a child's basic needs in their care."),
                       ("suitability", "Suitability to work with children",
                        "Behaviour that indicates the person may not be suitable to work with children "
                        "(transferable risk)."),
                   )),
        CodeSystem("allegation-outcome", "Allegation outcomes",
                   "The outcomes a LADO may record (Keeping Children Safe in Education, Part 4).", _concepts(
                       ("substantiated", "Substantiated", "There is sufficient evidence to prove the allegation."),
                       ("unsubstantiated", "Unsubstantiated",
                        "There is insufficient evidence either to prove or disprove the allegation."),
                       ("unfounded", "Unfounded",
                        "There is no evidence or proper basis which supports the allegation being made."),
                       ("false", "False", "There is sufficient evidence to disprove the allegation."),
                       ("malicious", "Malicious",
                        "There is clear evidence to prove a deliberate act to deceive."),
                   )),
        CodeSystem("concern-type", "Concern types", "Kinds of concern about a setting.", _concepts(
            ("whistleblowing", "Whistleblowing report", "A report by a worker about wrongdoing at the setting."),
            ("complaint", "Complaint", "A complaint about the setting from a placing authority, family or child."),
            ("hospital-referral", "Hospital referral", "A child from the setting attended or was referred to "
             "hospital in circumstances that raise concern."),
            ("missing-episode", "Missing episode", "A child went missing from the setting."),
            ("section-47-enquiry", "Section 47 enquiry", "A local authority started a child protection enquiry "
             "(Children Act 1989, section 47) about a child living at the setting."),
            ("child-protection-plan", "Child protection plan", "A child living at the setting became the subject "
             "of a child protection plan."),
            ("other", "Other concern", "Any other safeguarding concern about the setting."),
        )),
        CodeSystem("inspection-judgement", "Inspection judgements",
                   "The overall judgements of Ofsted's Social Care Common Inspection Framework for children's "
                   "homes.", _concepts(
                       ("outstanding", "Outstanding", "The overall experiences and progress of children are "
                        "outstanding."),
                       ("good", "Good", "The overall experiences and progress of children are good."),
                       ("requires-improvement", "Requires improvement to be good",
                        "The home is not yet good; there are no serious or widespread failures."),
                       ("inadequate", "Inadequate", "There are serious and/or widespread failures that mean "
                        "children are not protected or their welfare is not promoted or safeguarded."),
                   )),
        CodeSystem("escalation-reason", "Escalation reasons", "Why a concern about a setting is escalated.",
                   _concepts(
                       ("triangulation-threshold", "Signals crossed a threshold",
                        "The combined signals about the setting crossed the exchange's escalation threshold."),
                       ("unresolved-concern", "Unresolved concern",
                        "A concern was raised and not resolved within the protocol's time."),
                       ("repeated-incidents", "Repeated incidents",
                        "Repeated serious incidents or allegations at the setting."),
                       ("regulatory-action", "Regulatory action",
                        "The regulator has taken or proposes enforcement action."),
                       ("statutory-clock", "A statutory clock ran out",
                        "An item the law requires (a Regulation 44 report, a Regulation 45 review, a LADO "
                        "notification, a Regulation 40 notice) is missing or late."),
                   )),
        CodeSystem("ack-code", "Acknowledgement codes",
                   "Infrastructure (from the exchange) and business (from the recipient) acknowledgement codes; "
                   "meanings follow ITK3's response codes.", _concepts(
                       ("accepted", "Accepted", "Infrastructure: verified, valid and routed to its recipients."),
                       ("duplicate", "Duplicate", "Infrastructure: a message with this id was already accepted."),
                       ("unknown-sender", "Unknown sender", "Infrastructure: the sender is not in the directory."),
                       ("signature-invalid", "Signature invalid",
                        "Infrastructure: the signature did not verify, or its key is unknown, revoked or expired."),
                       ("replay", "Replay", "Infrastructure: issued-at outside the window, or a replayed id."),
                       ("payload-invalid", "Payload invalid",
                        "Infrastructure: the message does not conform to the standard."),
                       ("unauthorised-sender", "Unauthorised sender",
                        "Infrastructure: the sender's role may not send this event."),
                       ("no-recipients", "No recipients",
                        "Infrastructure: no participant could be resolved for the message's routing roles."),
                       ("delivery-failed", "Delivery failed",
                        "Infrastructure: the message could not be delivered and was dead-lettered."),
                       ("delivered", "Delivered", "Business: the recipient's node verified and stored the message."),
                       ("read", "Read", "Business: a person at the recipient opened the message."),
                       ("received", "Received", "Business: the recipient has received and read the message."),
                       ("accepted-for-action", "Accepted for action", "Business: the recipient accepts the task."),
                       ("rejected", "Rejected", "Business: the recipient rejects the message or task."),
                       ("child-not-known", "Child not known", "Business: the recipient does not know the child."),
                   )),
        CodeSystem("security-label", "Safeguarding sensitivity labels",
                   "Sensitive categories that only roles with a need may see.", _concepts(
                       ("confidential-placement", "Confidential placement",
                        "The placement address is confidential: never route or show it by address."),
                       ("allegation-detail", "Allegation detail",
                        "Details of an allegation against a person who works with children."),
                       ("whistleblower-identity", "Whistleblower identity",
                        "Identity of a person who raised a concern."),
                   )),
        CodeSystem("task-code", "Task codes", "What a Task of the exchange asks for.", _concepts(
            ("allegation-referral", "Allegation referral", "Consider an allegation against a person who works "
             "with children."),
            ("escalation", "Escalation", "Review the setting under the escalation protocol."),
        )),
        CodeSystem("task-input-type", "Task input and output types", "What a Task input or output holds.",
                   _concepts(
                       ("allegation-category", "Allegation category", "The category of the allegation."),
                       ("child", "Child involved", "A child the allegation concerns."),
                       ("summary", "Summary", "A short summary of the allegation, labelled allegation-detail."),
                       ("allegation-outcome", "Allegation outcome", "The LADO's recorded outcome."),
                       ("oversight-rule", "Oversight rule",
                        "The published oversight rule an escalation crossed: the rule's id as code, the rules' "
                        "version as version."),
                       ("window", "Window", "The window of time whose signals crossed the rule."),
                       ("signal", "Signal", "A message that counted towards the escalation, by its message id."),
                   )),
        CodeSystem("communication-category", "Communication categories", "Kinds of Communication.", _concepts(
            ("serious-incident-notification", "Serious incident notification", "A Regulation 40 notification."),
            ("allegation-notification", "Allegation notification", "A cross-boundary LADO notification."),
            ("concern-notification", "Concern notification", "A concern about a setting."),
            ("inspection-outcome", "Inspection outcome", "The regulator's judgement after an inspection."),
            ("decision", "Decision", "A recipient's decision or action about a message it received."),
            ("information-request", "Request for more information", "A recipient's question to a sender."),
        )),
        CodeSystem("decision-code", "Decisions and actions",
                   "What a recipient decided or did about a message: a LADO's decisions first, then the actions "
                   "of a host local authority or ICB.", _concepts(
                       ("strategy-meeting", "Threshold met: strategy meeting",
                        "LADO: the harm threshold is met and a strategy meeting is convened."),
                       ("advice-only", "Advice only",
                        "LADO: the threshold is not met; advice given to the employer."),
                       ("no-further-action", "No further action", "No further action is needed."),
                       ("referred-to-police", "Referred to the police", "The matter is referred to the police."),
                       ("child-protection-enquiry", "Child protection enquiry",
                        "Host local authority: enquiries under section 47 of the Children Act 1989 are started."),
                       ("visit-arranged", "Visit to the setting arranged",
                        "A visit to the setting is arranged."),
                       ("placement-review", "Placement or care plan review",
                        "A review of the placement or the care plan is arranged."),
                       ("health-assessment", "Health assessment arranged",
                        "ICB: a health assessment or review for the children is arranged."),
                       ("monitoring", "Monitoring", "No action now; the setting is monitored."),
                       ("other-action", "Other action", "Another action, described in the decision's text."),
                   )),
        CodeSystem("placement-class", "Placement classes", "Encounter classes for placements.", _concepts(
            ("residential-placement", "Residential placement",
             "A child living away from home in a residential setting."),
        )),
        CodeSystem("ssda903-legal-status", "SSDA903 legal status", "LS codes of the SSDA903 return.",
                   _ssda903("LS")),
        CodeSystem("ssda903-placement-type", "SSDA903 placement type", "PLACE codes of the SSDA903 return.",
                   _ssda903("PLACE")),
        CodeSystem("ssda903-placement-provider", "SSDA903 placement provider",
                   "PLACE_PROVIDER codes of the SSDA903 return.", _ssda903("PLACE_PROVIDER")),
        CodeSystem("ssda903-reason-episode-ceased", "SSDA903 reason episode ceased",
                   "REC codes of the SSDA903 return.", _ssda903("REC")),
        CodeSystem("ssda903-reason-placement-change", "SSDA903 reason for placement change",
                   "REASON_PLACE_CHANGE codes of the SSDA903 return.", _ssda903("REASON_PLACE_CHANGE")),
        CodeSystem("dfe-la", "DfE local authority codes",
                   "Three-digit DfE codes of English local authorities, with their ONS GSS codes.", _dfe_las()),
        CodeSystem("icb", "Integrated care boards", "The 42 ICBs by ODS code, with their ONS GSS codes.",
                   _icbs()),
        # External systems we bind to; listed so bindings can be checked offline.
        CodeSystem("administrative-gender", "AdministrativeGender", "FHIR R4 core.", _concepts(
            ("male", "Male", ""), ("female", "Female", ""), ("other", "Other", ""), ("unknown", "Unknown", "")),
            url=ADMINISTRATIVE_GENDER, external=True),
        CodeSystem("encounter-status", "EncounterStatus", "FHIR R4 core.", _concepts(
            ("planned", "Planned", ""), ("in-progress", "In Progress", ""), ("finished", "Finished", ""),
            ("cancelled", "Cancelled", ""), ("entered-in-error", "Entered in Error", "")),
            url=ENCOUNTER_STATUS, external=True),
        CodeSystem("v3-Confidentiality", "Confidentiality", "HL7 v3.", _concepts(
            ("N", "normal", ""), ("R", "restricted", ""), ("V", "very restricted", "")),
            url=V3_CONFIDENTIALITY, external=True),
        CodeSystem("v3-ActCode", "ActCode (sensitivity and handling subset)", "HL7 v3.", _concepts(
            ("SDV", "sexual assault, abuse, or domestic violence information sensitivity", ""),
            ("NORDSCLCD", "no redisclosure without consent directive", ""),
            ("NOPAT", "no disclosure to patient, family or caregivers without attending provider's "
                      "authorization", "")),
            url=V3_ACT_CODE, external=True),
    ]
    return {s.id: s for s in systems}


def _whole(system_id: str, title: str, description: str) -> ValueSet:
    return ValueSet(system_id, title, description, ((system_id, ()),))


@cache
def value_sets() -> dict[str, ValueSet]:
    """Every value set the profiles bind to, by id."""
    ours = [s for s in code_systems().values() if not s.external]
    sets = [_whole(s.id, s.title, f"All codes of the {s.title} code system.") for s in ours]
    sets += [
        ValueSet("administrative-gender", "AdministrativeGender", "FHIR R4 core.",
                 (("administrative-gender", ()),), url="http://hl7.org/fhir/ValueSet/administrative-gender",
                 external=True),
        ValueSet("placement-status", "Placement status", "The Encounter statuses a placement can have.",
                 (("encounter-status", ("planned", "in-progress", "finished", "entered-in-error")),)),
        ValueSet("security-labels", "Security labels",
                 "Labels a message or resource may carry in meta.security.",
                 (("v3-Confidentiality", ()), ("v3-ActCode", ()), ("security-label", ()))),
        ValueSet("placement-end-reason", "Placement end reasons",
                 "Why a placement ended: the SSDA903 reason for placement change or reason episode ceased.",
                 (("ssda903-reason-placement-change", ()), ("ssda903-reason-episode-ceased", ()))),
    ]
    return {v.id: v for v in sets}


def expand(value_set_id: str) -> dict[str, frozenset[str]]:
    """The codes a value set allows, by code system canonical URL."""
    systems = code_systems()
    allowed: dict[str, frozenset[str]] = {}
    for system_id, codes in value_sets()[value_set_id].includes:
        system = systems[system_id]
        allowed[system.canonical] = frozenset(codes) if codes else system.codes
    return allowed


def system_url(system_id: str) -> str:
    """Canonical URL of a code system by its id."""
    return code_systems()[system_id].canonical


def display(system_id: str, code: str) -> str:
    """Display text of a code; the code itself when unknown."""
    for concept in code_systems()[system_id].concepts:
        if concept.code == code:
            return concept.display
    return code
