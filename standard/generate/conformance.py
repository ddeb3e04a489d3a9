"""FHIR R4 conformance resources of the standard: StructureDefinitions, CodeSystems, ValueSets,
NamingSystems, Questionnaires, MessageDefinitions, a CapabilityStatement and the ImplementationGuide."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from standard import catalogue as cat
from standard import fhirmodel
from standard import terminology as term
from standard.profiles import PROFILES, QUESTIONNAIRES, El, Profile

PUBLISHER = "Safeguarding Exchange"
DATE = "2026-11-23"
_COMMON = {"version": cat.VERSION, "status": "draft", "experimental": False, "publisher": PUBLISHER, "date": DATE,
           "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "GB"}]}]}

_FIXED_KEY = {"string": "String", "code": "Code", "uri": "Uri", "canonical": "Canonical", "url": "Url",
              "boolean": "Boolean", "id": "Id"}


def _element_id(resource_type: str, path: str) -> tuple[str, str]:
    """(id, path) of an element as a StructureDefinition writes them: choice names become [x]."""
    ids, paths = [resource_type], [resource_type]
    current = resource_type
    for step in path.split("."):
        name, _, slice_name = step.partition(":")
        info = fhirmodel.element(current, name)
        fhir_name = f"{info.choice_of}[x]" if info.choice_of else name
        ids.append(fhir_name + (f":{slice_name}" if slice_name else ""))
        paths.append(fhir_name)
        current = info.type_name
    return ".".join(ids), ".".join(paths)


def _element(profile: Profile, el: El) -> dict:
    eid, path = _element_id(profile.type, el.path)
    info = fhirmodel.walk(profile.type, el.path)[-1]
    out: dict[str, Any] = {"id": eid, "path": path}
    last = el.path.split(".")[-1]
    if ":" in last:
        out["sliceName"] = last.split(":")[1]
    if el.short:
        out["short"] = el.short
    if el.min is not None:
        out["min"] = el.min
    if el.max is not None:
        out["max"] = el.max
    if info.choice_of or el.targets or el.logical:
        type_entry: dict[str, Any] = {"code": info.fhir_type}
        if el.targets and "*" not in el.targets:
            type_entry["targetProfile"] = [cat.profile_url(t) for t in el.targets]
        out["type"] = [type_entry]
    if el.fixed is not None:
        if ":" in last:
            pass  # a slice's pattern is its discriminator, written on the parent below
        elif isinstance(el.fixed, dict):
            out[f"pattern{info.type_name}"] = el.fixed
        else:
            out[f"fixed{_FIXED_KEY.get(info.type_name, info.type_name[:1].upper() + info.type_name[1:])}"] = el.fixed
    if el.regex:
        out["constraint"] = [{
            "key": f"{profile.id.lower()}-{el.path.replace(':', '-').replace('.', '-')}",
            "severity": "error", "human": f"Value must match {el.regex}",
            "expression": f"matches('{el.regex}')",
        }]
    if el.binding:
        out["binding"] = {"strength": el.strength, "valueSet": term.value_sets()[el.binding].canonical}
    out["mustSupport"] = True
    return out


def _required_pattern_slice(profile: Profile, el: El) -> list[dict]:
    """A pattern on a repeating element, written as a required slice (as US Core writes Observation.category).

    A pattern on the element itself would apply to each repetition, which tools read differently (some compare
    the whole list with it and refuse every instance); a slice discriminated by the pattern on $this means
    "one repetition matches it" to every tool.
    """
    elem = _element(profile, replace(el, fixed=None))
    elem["slicing"] = {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"}
    info = fhirmodel.walk(profile.type, el.path)[-1]
    codes = [c["code"] for c in el.fixed.get("coding", []) if "code" in c]
    name = codes[0] if codes else "pattern"
    return [elem, {"id": f"{elem['id']}:{name}", "path": elem["path"], "sliceName": name, "min": 1, "max": "1",
                   f"pattern{info.type_name}": el.fixed, "mustSupport": True}]


def structure_definition(profile: Profile) -> dict:
    differential: list[dict] = []
    sliced: set[str] = set()
    for el in profile.elements:
        head = el.path.split(".")
        last = head[-1]
        if ":" in last and el.fixed is not None:
            parent_path = ".".join([*head[:-1], last.split(":")[0]])
            if parent_path not in sliced:
                sliced.add(parent_path)
                eid, path = _element_id(profile.type, parent_path)
                disc = sorted(el.fixed)[0]
                slicing = {"discriminator": [{"type": "pattern", "path": disc}], "rules": "open"}
                existing = next((d for d in differential if d["id"] == eid), None)
                if existing:
                    existing["slicing"] = slicing
                else:
                    differential.append({"id": eid, "path": path, "slicing": slicing})
            elem = _element(profile, el)
            differential.append(elem)
            disc_info = fhirmodel.walk(profile.type, f"{el.path}.{disc}")[-1]
            _, child_path = _element_id(profile.type, f"{el.path}.{disc}")
            key = "pattern" + disc_info.type_name[:1].upper() + disc_info.type_name[1:]
            differential.append({"id": f"{elem['id']}.{disc}", "path": child_path, key: el.fixed[disc]})
        elif isinstance(el.fixed, dict) and fhirmodel.walk(profile.type, el.path)[-1].is_list:
            differential += _required_pattern_slice(profile, el)
        else:
            differential.append(_element(profile, el))
    return {
        "resourceType": "StructureDefinition", "id": profile.id, "url": profile.url, **_COMMON,
        "name": profile.id.replace("-", ""), "title": profile.title, "description": profile.description,
        "fhirVersion": cat.FHIR_VERSION, "kind": "resource", "abstract": profile.abstract, "type": profile.type,
        "baseDefinition": profile.base_url, "derivation": "constraint",
        "differential": {"element": [{"id": profile.type, "path": profile.type}, *differential]},
    }


def code_system(cs: term.CodeSystem) -> dict:
    properties = sorted({name for c in cs.concepts for name, _ in c.properties})
    concepts = []
    for c in cs.concepts:
        item: dict[str, Any] = {"code": c.code, "display": c.display}
        if c.definition:
            item["definition"] = c.definition
        if c.properties:
            item["property"] = [{"code": k, "valueString": v} for k, v in c.properties]
        concepts.append(item)
    out = {"resourceType": "CodeSystem", "id": cs.id, "url": cs.canonical, **_COMMON,
           "name": cs.id.title().replace("-", ""), "title": cs.title, "description": cs.description,
           "caseSensitive": True, "content": "complete", "count": len(concepts), "concept": concepts}
    if properties:
        out["property"] = [{"code": p, "type": "string"} for p in properties]
    return out


def value_set(vs: term.ValueSet) -> dict:
    systems = term.code_systems()
    include = []
    for system_id, codes in vs.includes:
        entry: dict[str, Any] = {"system": systems[system_id].canonical}
        if codes:
            entry["concept"] = [{"code": code} for code in codes]
        include.append(entry)
    return {"resourceType": "ValueSet", "id": vs.id, "url": vs.canonical, **_COMMON,
            "name": vs.id.title().replace("-", ""), "title": vs.title, "description": vs.description,
            "compose": {"include": include}}


_NAMING_SYSTEMS = [
    ("ofsted-urn", "Ofsted unique reference number", cat.OFSTED_URN, "SC followed by 6 digits, or 7 digits."),
    ("dfe-la-code", "DfE local authority code", cat.DFE_LA_CODE, "Three-digit code, e.g. 371 for Doncaster."),
    ("ons-gss-code", "ONS GSS code", cat.ONS_GSS_CODE, "Nine-character ONS code, e.g. E08000017."),
    ("cqc-location-id", "CQC location id", cat.CQC_LOCATION_ID, "e.g. 1-123456789."),
    ("police-force-code", "Police force code", cat.POLICE_FORCE_CODE, "Home Office police force code."),
    ("participant", "Exchange participant id", cat.PARTICIPANT_ID, "Participant id in the exchange directory."),
    ("local-child-id", "Local child id", cat.LOCAL_CHILD_ID, "The placing authority's child id (SSDA903 CHILD)."),
    ("child-pseudonym", "Child pseudonym", cat.CHILD_PSEUDONYM, "Keyed hash of placing LA and local child id."),
    ("local-staff-id", "Employer's staff id", cat.LOCAL_STAFF_ID, "The employer's id of a staff member."),
    ("case-reference", "Allegation case reference", cat.CASE_REFERENCE, "Reference shared by referrer and LADO."),
]


def naming_system(nid: str, name: str, url: str, description: str) -> dict:
    return {"resourceType": "NamingSystem", "id": nid, "name": name.title().replace(" ", "").replace("'", ""),
            "status": "draft", "kind": "identifier", "date": DATE, "publisher": PUBLISHER,
            "description": f"{name}. {description}",
            "uniqueId": [{"type": "uri", "value": url, "preferred": True}]}


_ITEM_TYPE = {"date": "date", "boolean": "boolean", "integer": "integer", "string": "string", "text": "text",
              "choice": "choice"}


def questionnaire(qid: str) -> dict:
    title, basis, questions = QUESTIONNAIRES[qid]
    items = []
    for q in questions:
        item: dict[str, Any] = {"linkId": q.link_id, "text": q.text, "type": _ITEM_TYPE[q.type],
                                "required": q.required}
        if q.options:
            item["answerOption"] = [{"valueCoding": {"code": o, "display": o.title()}} for o in q.options]
        items.append(item)
    return {"resourceType": "Questionnaire", "id": qid, "url": cat.questionnaire_url(qid), **_COMMON,
            "name": qid.title().replace("-", ""), "title": title, "description": basis,
            "subjectType": ["Location"], "item": items}


def message_definition(event: cat.Event) -> dict:
    focus = [{"code": PROFILES[event.focus_profile].type, "profile": cat.profile_url(event.focus_profile),
              "min": 1, "max": "1"}]
    out: dict[str, Any] = {
        "resourceType": "MessageDefinition", "id": event.code, "url": event.definition_url, **_COMMON,
        "name": event.code.title().replace("-", ""), "title": event.display, "description": event.purpose,
        "purpose": f"Legal basis: {event.legal_basis} Timeliness: {event.timeliness}",
        "eventCoding": {"system": term.system_url("event"), "code": event.code},
        "category": event.category, "focus": focus, "responseRequired": event.response_required,
    }
    if event.code != "acknowledgement":
        out["allowedResponse"] = [{"message": cat.message_definition_url("acknowledgement"),
                                   "situation": "Infrastructure acknowledgement from the exchange; business "
                                                "acknowledgement from each recipient."}]
    if event.acknowledge_working_days is not None:
        out["allowedResponse"] += [
            {"message": cat.message_definition_url("decision-recorded"),
             "situation": "A recipient records what it decided or did about the message."},
            {"message": cat.message_definition_url("information-request"),
             "situation": "A recipient asks the sender for more information."}]
    return out


def capability_statement() -> dict:
    return {
        "resourceType": "CapabilityStatement", "id": "safeguarding-exchange-participant",
        "url": f"{cat.CANONICAL}/CapabilityStatement/safeguarding-exchange-participant", **_COMMON,
        "name": "SafeguardingExchangeParticipant", "title": "Safeguarding Exchange participant",
        "kind": "requirements", "fhirVersion": cat.FHIR_VERSION, "format": ["json"],
        "description": "What a participant system supports: it sends the events of its roles and receives "
                       "every event routed to it.",
        "messaging": [{"supportedMessage": [{"mode": "receiver", "definition": e.definition_url}
                                            for e in cat.EVENTS]}],
    }


def all_resources() -> list[dict]:
    """Every conformance resource of the package."""
    resources: list[dict] = [structure_definition(p) for p in PROFILES.values()]
    resources += [code_system(cs) for cs in term.code_systems().values() if not cs.external]
    resources += [value_set(vs) for vs in term.value_sets().values() if not vs.external]
    resources += [naming_system(*n) for n in _NAMING_SYSTEMS]
    resources += [questionnaire(q) for q in QUESTIONNAIRES]
    resources += [message_definition(e) for e in cat.EVENTS]
    resources.append(capability_statement())
    resources.append(implementation_guide(resources))
    return resources


def implementation_guide(resources: list[dict]) -> dict:
    return {
        "resourceType": "ImplementationGuide", "id": "safeguarding-exchange",
        "url": f"{cat.CANONICAL}/ImplementationGuide/safeguarding-exchange", **_COMMON,
        "name": "SafeguardingExchange", "title": "Safeguarding Exchange", "packageId": cat.PACKAGE_NAME,
        "license": "CC0-1.0", "fhirVersion": [cat.FHIR_VERSION],
        "dependsOn": [{"uri": "http://hl7.org/fhir", "packageId": "hl7.fhir.r4.core", "version": cat.FHIR_VERSION}],
        "definition": {"resource": [
            {"reference": {"reference": f"{r['resourceType']}/{r['id']}"}, "name": r.get("title", r["id"]),
             "exampleBoolean": False}
            for r in resources]},
    }
