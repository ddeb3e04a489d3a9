"""The language-neutral case suite: per event, valid examples and invalid variants with the finding each must give.

Format (one file per event): ``[{"description", "message_type", "tests": [{"description", "data", "valid",
"finding"}]}]``; ``finding`` is null for valid cases.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from standard import catalogue as cat
from standard.generate.examples import SCENARIOS

Mutation = Callable[[dict], None]


def _res(bundle: dict, rtype: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def _focus(bundle: dict) -> dict:
    target = bundle["entry"][0]["resource"]["focus"][0]["reference"]
    return next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == target)


def _set(path: list, value) -> Mutation:
    def apply(bundle: dict) -> None:
        node = bundle
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return apply


def _drop(path: list) -> Mutation:
    def apply(bundle: dict) -> None:
        node = bundle
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
    return apply


def _swap_header(bundle: dict) -> None:
    bundle["entry"][0], bundle["entry"][1] = bundle["entry"][1], bundle["entry"][0]


def _dup_url(bundle: dict) -> None:
    bundle["entry"][-1]["fullUrl"] = bundle["entry"][-2]["fullUrl"]


def _dangling_focus(bundle: dict) -> None:
    bundle["entry"][0]["resource"]["focus"][0]["reference"] = "urn:uuid:00000000-0000-4000-8000-0000000000ff"


def _dangling_reference(bundle: dict) -> None:
    def first_reference(node):
        if isinstance(node, dict):
            if "reference" in node:
                return node
            node = list(node.values())
        if isinstance(node, list):
            for item in node:
                found = first_reference(item)
                if found is not None:
                    return found
        return None

    first_reference([e["resource"] for e in reversed(bundle["entry"])])["reference"] = \
        "urn:uuid:00000000-0000-4000-8000-0000000000fe"


def _unknown_element(bundle: dict) -> None:
    _focus(bundle)["favouriteColour"] = "blue"


def _alien_resource(bundle: dict) -> None:
    bundle["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa",
                            "resource": {"resourceType": "Medication", "status": "active"}})


def _same_id_twice(bundle: dict) -> None:
    twin = copy.deepcopy(bundle["entry"][-1])
    twin["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-0000000000ab"
    bundle["entry"][-1]["resource"]["id"] = twin["resource"]["id"] = "r1"
    bundle["entry"].append(twin)


def _contained_child(bundle: dict) -> None:
    _focus(bundle)["contained"] = [{"resourceType": "Patient", "id": "other-child", "birthDate": "2013-04-01",
                                    "identifier": [{"system": cat.LOCAL_CHILD_ID, "value": "C0000001"}]}]


def _destination(bundle: dict) -> None:
    bundle["entry"][0]["resource"]["destination"] = [{"endpoint": "urn:uuid:00000000-0000-4000-8000-0000000000dd",
                                                      "receiver": {"identifier": {"system": cat.PARTICIPANT_ID,
                                                                                  "value": "la-886"}}}]


def _extra_identifier(rtype: str, system: str, value: str) -> Mutation:
    def apply(bundle: dict) -> None:
        _res(bundle, rtype)["identifier"].append({"system": system, "value": value})
    return apply


def _setting_urn(value: str) -> Mutation:
    def apply(bundle: dict) -> None:
        _res(bundle, "Location")["identifier"][0]["value"] = value
    return apply


_GENERIC: list[tuple[str, str, Mutation]] = [
    ("Bundle.timestamp missing", "profile-cardinality", _drop(["timestamp"])),
    ("Bundle.type is not message", "profile-fixed-value", _set(["type"], "collection")),
    ("message id is not a urn:uuid", "profile-format", _set(["identifier", "value"], "message-1")),
    ("MessageHeader is not the first entry", "bdl-12", _swap_header),
    ("two entries share a fullUrl", "bdl-7", _dup_url),
    ("MessageHeader.focus points outside the Bundle", "focus-missing", _dangling_focus),
    ("a reference between entries points outside the Bundle", "ref-unresolved", _dangling_reference),
    ("the focus resource has an element FHIR R4 does not define", "fhir-structure", _unknown_element),
    ("a resource type the event does not allow", "profile-unexpected-resource", _alien_resource),
    ("MessageHeader.sender missing", "profile-cardinality", lambda b: b["entry"][0]["resource"].pop("sender")),
    ("event code not in the catalogue", "event-unknown",
     _set(["entry", 0, "resource", "eventCoding", "code"], "placement-begun")),
    ("Bundle.timestamp with a time but no time zone", "fhir-structure", _set(["timestamp"], "2026-03-02T09:30:00")),
    ("Bundle.timestamp on a day the calendar does not have", "fhir-structure",
     _set(["timestamp"], "2026-02-30T09:30:00Z")),
    ("Bundle.timestamp in 2099", "timestamp-out-of-window", _set(["timestamp"], "2099-03-02T09:30:00Z")),
    ("Bundle.timestamp in 1971", "timestamp-out-of-window", _set(["timestamp"], "1971-03-02T09:30:00Z")),
    ("MessageHeader without a source (FHIR requires one)", "fhir-structure",
     lambda b: b["entry"][0]["resource"].pop("source")),
    ("MessageHeader.destination filled in by the sender (the exchange decides recipients)", "profile-cardinality",
     _destination),
    ("an empty array (FHIR JSON forbids them)", "fhir-structure", _set(["entry", 0, "resource", "extension"], [])),
    ("an empty string", "fhir-structure", _set(["entry", 0, "resource", "source", "name"], " ")),
    ("a uri with whitespace in it", "fhir-structure", _set(["entry", 0, "resource", "source", "endpoint"],
                                                           "https://example.org/a b")),
    ("a resource hidden inside another (contained)", "contained-not-allowed", _contained_child),
    ("two resources of one type with the same id", "resource-id-duplicate", _same_id_twice),
]

# One case only: a string over FHIR's 1,048,576-character limit makes a 1 MB case.
_HUGE = ("a string over FHIR's 1,048,576-character limit", "fhir-structure",
         _set(["entry", 0, "resource", "source", "name"], "x" * (1024 * 1024 + 1)))


def _child_cases() -> list[tuple[str, str, Mutation]]:
    return [
        ("NHS number with a wrong check digit", "nhs-number-invalid",
         lambda b: _res(b, "Patient")["identifier"].__setitem__(
             1, {"system": cat.NHS_NUMBER, "value": "9990000019"})),
        ("placing LA code unknown", "la-code-unknown",
         lambda b: _res(b, "Patient")["identifier"][0]["assigner"]["identifier"].__setitem__("value", "999")),
        ("child's birth date in dd/mm/yyyy", "fhir-structure",
         lambda b: _res(b, "Patient").__setitem__("birthDate", "14/05/2012")),
        ("child carries a home address", "profile-cardinality",
         lambda b: _res(b, "Patient").__setitem__("address", [{"city": "Anytown"}])),
        ("child's birth date not in the calendar (30 February)", "fhir-structure",
         lambda b: _res(b, "Patient").__setitem__("birthDate", "2019-02-30")),
        ("child's birth date in the future", "date-in-future",
         lambda b: _res(b, "Patient").__setitem__("birthDate", "2099-01-01")),
        ("NHS number written with spaces", "nhs-number-invalid",
         lambda b: _res(b, "Patient")["identifier"].__setitem__(
             1, {"system": cat.NHS_NUMBER, "value": "943 476 5919"})),
    ]


_SPECIFIC: dict[str, list[tuple[str, str, Mutation]]] = {
    "placement": [
        ("placement type not an SSDA903 code", "profile-binding",
         lambda b: _focus(b)["type"][0]["coding"][0].__setitem__("code", "Q9")),
        ("placement ends before it starts", "period-order",
         lambda b: _focus(b)["period"].__setitem__("end", "2020-01-01")),
        ("placement subject points at the setting", "ref-target-type",
         lambda b: _focus(b)["subject"].__setitem__(
             "reference", next(e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "Location"))),
        ("setting URN malformed", "ofsted-urn-invalid", _setting_urn("SC12")),
        ("placement ends before it starts on the same day", "period-order",
         lambda b: _focus(b).__setitem__("period", {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"})),
        ("placement ends before it starts across time zones", "period-order",
         lambda b: _focus(b).__setitem__("period", {"start": "2026-03-02T10:00:00+00:00",
                                                    "end": "2026-03-02T10:30:00+01:00"})),
        ("provider's ODS code malformed", "ods-code-invalid", _extra_identifier("Organization", cat.ODS_CODE, "rx 1")),
        ("provider's Ofsted URN malformed", "ofsted-urn-invalid",
         _extra_identifier("Organization", cat.OFSTED_URN, "SC-12")),
        ("legal status not an SSDA903 code", "profile-binding",
         lambda b: _res(b, "EpisodeOfCare")["type"][0]["coding"][0].__setitem__("code", "X9")),
    ],
    "placement-ended": [
        ("ended placement without an end date", "profile-cardinality",
         lambda b: _focus(b)["period"].pop("end")),
        ("ended placement still in progress", "profile-fixed-value",
         lambda b: _focus(b).__setitem__("status", "in-progress")),
    ],
    "serious-incident": [
        ("Regulation 40 category not in the value set", "profile-binding",
         lambda b: _focus(b)["reasonCode"][0]["coding"][0].__setitem__("code", "40-9-z")),
        ("incident dated after the notification", "incident-after-notification",
         lambda b: _res(b, "AdverseEvent").__setitem__("date", "2026-04-01T00:00:00Z")),
        ("incident without a date", "profile-cardinality", lambda b: _res(b, "AdverseEvent").pop("date")),
        ("incident dated in the future", "date-in-future",
         lambda b: _res(b, "AdverseEvent").__setitem__("date", "2099-04-01T00:00:00Z")),
        ("notification sent in the future", "date-in-future",
         lambda b: _focus(b).__setitem__("sent", "2099-04-01T00:00:00Z")),
    ],
    "report": [
        ("answer to a question the Questionnaire does not ask", "questionnaire-item-unknown",
         lambda b: _focus(b)["item"].append({"linkId": "mood", "answer": [{"valueString": "fine"}]})),
        ("report against another questionnaire", "profile-fixed-value",
         lambda b: _focus(b).__setitem__("questionnaire", cat.questionnaire_url("something-else"))),
        ("required question not answered", "questionnaire-item-missing",
         lambda b: _focus(b).__setitem__("item", _focus(b)["item"][1:])),
    ],
    "allegation": [
        ("allegation category not in the value set", "profile-binding",
         lambda b: _res(b, "Task")["input"][0]["valueCodeableConcept"]["coding"][0].__setitem__("code", "rude")),
        ("referral without the LADO that owns it", "profile-cardinality", lambda b: _res(b, "Task").pop("owner")),
        ("staff role carries no staff id", "profile-cardinality",
         lambda b: _res(b, "PractitionerRole").pop("identifier")),
    ],
    "allegation-outcome": [
        ("outcome not one of the five LADO outcomes", "profile-binding",
         lambda b: _focus(b)["output"][0]["valueCodeableConcept"]["coding"][0].__setitem__("code", "proven")),
        ("completed referral without an outcome", "profile-cardinality", lambda b: _focus(b).pop("output")),
    ],
    "allegation-notification": [
        ("notification not about the referral Task", "profile-cardinality", lambda b: _focus(b).pop("about")),
    ],
    "concern-notification": [
        ("concern type not in the value set", "profile-binding",
         lambda b: _focus(b)["category"][0]["coding"][0].__setitem__("code", "gossip")),
        ("concern not about a setting", "profile-cardinality", lambda b: _focus(b).pop("about")),
        ("setting URN malformed", "ofsted-urn-invalid", _setting_urn("12345")),
    ],
    "inspection-outcome": [
        ("inspection outcome without a judgement", "profile-cardinality", lambda b: _focus(b).pop("reasonCode")),
        ("judgement not in the value set", "profile-binding",
         lambda b: _focus(b)["reasonCode"][0]["coding"][0].__setitem__("code", "fine")),
        ("inspection outcome not about a setting", "profile-cardinality", lambda b: _focus(b).pop("about")),
    ],
    "escalation": [
        ("escalation without a priority", "profile-cardinality", lambda b: _focus(b).pop("priority")),
        ("escalation reason not in the value set", "profile-binding",
         lambda b: _focus(b)["reasonCode"]["coding"][0].__setitem__("code", "hunch")),
        ("escalation naming a signal without its message id", "profile-cardinality",
         lambda b: _focus(b)["input"][-1].pop("valueIdentifier")),
        ("escalation naming two rules", "profile-cardinality",
         lambda b: _focus(b)["input"].insert(0, dict(_focus(b)["input"][0]))),
    ],
    "response": [
        ("response that names a child", "profile-cardinality",
         lambda b: _focus(b).__setitem__("subject", {"identifier": {"system": cat.LOCAL_CHILD_ID, "value": "C1"}})),
        ("response addressed to a recipient by the sender (the exchange routes it)", "profile-cardinality",
         lambda b: _focus(b).__setitem__("recipient", [{"identifier": {"system": cat.PARTICIPANT_ID,
                                                                        "value": "la-886"}}])),
        ("response that answers nothing", "profile-cardinality",
         lambda b: b["entry"][0]["resource"].pop("response")),
        ("response without the id of the message it answers", "fhir-structure",
         lambda b: b["entry"][0]["resource"]["response"].pop("identifier")),
        ("response without a sent time", "profile-cardinality", lambda b: _focus(b).pop("sent")),
    ],
    "decision-recorded": [
        ("decision code not in the decision codes", "profile-binding",
         lambda b: _focus(b)["reasonCode"][0]["coding"][0].__setitem__("code", "shrug")),
        ("decision without a decision code", "profile-cardinality", lambda b: _focus(b).pop("reasonCode")),
        ("decision in the wrong category", "profile-fixed-value",
         lambda b: _focus(b)["category"][0]["coding"][0].__setitem__("code", "information-request")),
    ],
    "information-request": [
        ("request without a question", "profile-cardinality", lambda b: _focus(b).pop("payload")),
        ("request in the wrong category", "profile-fixed-value",
         lambda b: _focus(b)["category"][0]["coding"][0].__setitem__("code", "decision")),
    ],
    "acknowledgement": [
        ("acknowledgement that answers nothing", "profile-cardinality",
         lambda b: b["entry"][0]["resource"].pop("response")),
        ("acknowledgement code not in the code system", "profile-binding",
         lambda b: _focus(b)["issue"][0]["details"]["coding"][0].__setitem__("code", "meh")),
    ],
}

_GROUPS = {
    "placement-started": ["placement", "child"], "placement-changed": ["placement", "child"],
    "placement-ended": ["placement", "placement-ended", "child"], "serious-incident": ["serious-incident", "child"],
    "independent-visitor-report": ["report"], "quality-of-care-review": ["report"],
    "allegation-referral": ["allegation"], "allegation-notification": ["allegation", "allegation-notification"],
    "allegation-outcome": ["allegation", "allegation-outcome"], "concern-notification": ["concern-notification"],
    "inspection-outcome": ["inspection-outcome"], "escalation": ["escalation"], "acknowledgement": ["acknowledgement"],
    "decision-recorded": ["response", "decision-recorded"], "information-request": ["response", "information-request"],
}


def cases_for(event_code: str) -> list[dict]:
    names = [n for n in SCENARIOS if n.startswith(event_code + "-")]
    valid = [{"description": f"example {n}", "data": SCENARIOS[n](n), "valid": True, "finding": None} for n in names]
    base = valid[0]["data"]
    mutations = list(_GENERIC) + ([_HUGE] if event_code == "escalation" else [])
    for group in _GROUPS[event_code]:
        mutations += _child_cases() if group == "child" else _SPECIFIC[group]
    invalid = []
    for description, finding, mutate in mutations:
        data = copy.deepcopy(base)
        mutate(data)
        invalid.append({"description": description, "data": data, "valid": False, "finding": finding})
    return [{"description": f"{cat.get_event(event_code).display}: valid examples and one invalid case per rule",
             "message_type": event_code, "tests": valid + invalid}]


def all_cases() -> dict[str, list[dict]]:
    return {f"{e.code}.json": cases_for(e.code) for e in cat.EVENTS}
