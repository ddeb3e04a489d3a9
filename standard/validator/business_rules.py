"""Layer 5: business rules (check digits, known codes, date order, questionnaire answers)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from standard import catalogue as cat
from standard import terminology as term
from standard.profiles import QUESTIONNAIRES
from standard.validator.findings import Finding
from standard.validator.index import MessageIndex
from standard.validator.locations import entry_location


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus 11 check digit for the first nine digits of an NHS number; None when no number can have them."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else check


def nhs_number_is_valid(value: str) -> bool:
    """Modulus 11 check of a 10-digit NHS number."""
    if len(value) != 10 or not value.isdigit():
        return False
    return nhs_check_digit(value[:9]) == int(value[9])


@cache
def _known(system_id: str) -> frozenset[str]:
    return term.code_systems()[system_id].codes


@cache
def _questions(questionnaire_url: str) -> tuple[frozenset[str], frozenset[str]] | None:
    for qid, (_, _, questions) in QUESTIONNAIRES.items():
        if cat.questionnaire_url(qid) == questionnaire_url:
            return (frozenset(q.link_id for q in questions), frozenset(q.link_id for q in questions if q.required))
    return None


def _walk(node, path):
    """Yield (path, dict) for every object in a resource."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if path:
                yield from _walk(item, (*path[:-1], f"{path[-1]}[{i}]"))


def _date_key(value: str) -> str:
    return value[:10] if len(value) >= 10 else value


def _node_problems(node: dict) -> list[tuple[str, str, str]]:
    """(code, element, message) for one object; used to locate failures found by the fast pass."""
    problems = []
    value = node.get("value")
    if isinstance(value, str) and _identifier_problem(node.get("system"), value):
        code = "nhs-number-invalid" if node.get("system") == cat.NHS_NUMBER else "la-code-unknown"
        problems.append((code, "value", _MESSAGES[code]))
    end, start = node.get("end"), node.get("start")
    if isinstance(end, str) and isinstance(start, str) and _date_key(end) < _date_key(start):
        problems.append(("period-order", "end", _MESSAGES["period-order"]))
    return problems


_MESSAGES = {
    "nhs-number-invalid": "the NHS number fails its modulus 11 check digit; check it against the child's record "
                          "(PDS) or leave it out",
    "la-code-unknown": "not a DfE local authority code; use the 3-digit code from the DfE LA list (e.g. 371 for "
                       "Doncaster)",
    "period-order": "the end is before the start; correct one of the dates",
}


def _identifier_problem(system, value: str) -> bool:
    if system == cat.NHS_NUMBER:
        return not nhs_number_is_valid(value)
    if system == cat.DFE_LA_CODE:
        return value not in _known("dfe-la")
    return False


def findings(event_code: str, index: MessageIndex) -> Iterator[Finding]:
    sent_at: list[str] = []
    incidents: list[tuple[int, str]] = []
    for facts in index.entries:
        resource, rtype, i = facts.resource, facts.resource_type, facts.index
        if any(_identifier_problem(system, value) for system, value in facts.identifiers) or any(
                _date_key(end) < _date_key(start) for start, end in facts.periods):
            # Rare: walk again, this time keeping paths, to say where.
            for path, node in _walk(resource, ()):
                for code, element, message in _node_problems(node):
                    yield Finding(code, entry_location(i, rtype, *path, element), message, layer="business")
        if rtype == "Organization" and _is_icb(resource):
            for j, ident in enumerate(resource.get("identifier") or []):
                if isinstance(ident, dict) and ident.get("system") == cat.ODS_CODE and \
                        ident.get("value") not in _known("icb"):
                    yield Finding("icb-code-unknown", entry_location(i, rtype, f"identifier[{j}]", "value"),
                                  "not the ODS code of an integrated care board (e.g. QF7)", layer="business")
        elif rtype == "Communication" and isinstance(resource.get("sent"), str):
            sent_at.append(resource["sent"])
        elif rtype == "AdverseEvent" and isinstance(resource.get("date"), str):
            incidents.append((i, resource["date"]))
        elif rtype == "QuestionnaireResponse":
            yield from _questionnaire(i, resource)
    if sent_at:
        latest = max(_date_key(s) for s in sent_at)
        for i, date in incidents:
            if _date_key(date) > latest:
                yield Finding("incident-after-notification", entry_location(i, "AdverseEvent", "date"),
                              "the incident is dated after the notification was sent; check the incident date",
                              layer="business")


def _is_icb(resource: dict) -> bool:
    for concept in resource.get("type") or []:
        for coding in (concept or {}).get("coding") or []:
            if coding.get("code") == "icb" and coding.get("system") == term.system_url("participant-kind"):
                return True
    return False


def _questionnaire(index: int, resource: dict) -> Iterator[Finding]:
    known = _questions(resource.get("questionnaire"))
    if known is None:
        return
    asked, required = known
    answered = set()
    for j, item in enumerate(resource.get("item") or []):
        link_id = item.get("linkId") if isinstance(item, dict) else None
        answered.add(link_id)
        if link_id not in asked:
            yield Finding("questionnaire-item-unknown",
                          entry_location(index, "QuestionnaireResponse", f"item[{j}]", "linkId"),
                          "this linkId is not a question of the Questionnaire; use the published linkIds",
                          layer="business")
    for link_id in sorted(required - answered):
        yield Finding("questionnaire-item-missing", entry_location(index, "QuestionnaireResponse", "item"),
                      f"the required question '{link_id}' is not answered", layer="business")
