"""Layer 6: business rules (identifier formats and check digits, known codes, date order, no future dates,
questionnaire answers).

Dates and times:
- a period is out of order when its end is before its start; when both carry a time they are compared as
  instants (time zones and the same day count), otherwise as calendar dates at their precision;
- a date of birth, or the date of an event that has happened (an incident, a notification sent, a referral
  authored, a report authored, a provenance recorded), must not be in the future. "Now" is injected (the
  validator's `now`); CLOCK_SKEW is allowed for senders' clocks, and a date without a time counts from the
  start of that day in the earliest time zone (UTC+14), so a birth registered today anywhere is never refused;
- Bundle.timestamp must be no later than now plus CLOCK_SKEW, and no earlier than EARLIEST_TIMESTAMP (before the
  standard existed no message of it was assembled; a fixed floor rather than a window behind the clock, so the
  published examples and case suite stay valid, while the router's 5-minute signature window already refuses
  stale traffic).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
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


CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_TIMESTAMP = datetime(2024, 1, 1, tzinfo=UTC)
_EARLIEST_ZONE = timezone(timedelta(hours=14))

# Elements that record something that has already happened, by resource type.
_PAST_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Patient": ("birthDate",), "AdverseEvent": ("date", "recordedDate", "detected"),
    "Communication": ("sent",), "Task": ("authoredOn", "lastModified"), "QuestionnaireResponse": ("authored",),
    "Provenance": ("recorded",),
}


def _date_key(value: str) -> str:
    return value[:10] if len(value) >= 10 else value


_FRACTION = re.compile(r"\.(\d{6})\d+")


def _instant(value: str) -> datetime | None:
    """The instant a dateTime with a time stands for; None for a date alone or a malformed value."""
    if "T" not in value:
        return None
    text = _FRACTION.sub(r".\1", value.replace(":60", ":59", 1) if value[17:19] == "60" else value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _earliest(value: str) -> datetime | None:
    """The earliest instant a date, partial date or dateTime can stand for; None when malformed."""
    if "T" in value:
        return _instant(value)
    try:
        year = int(value[0:4])
        month = int(value[5:7]) if len(value) >= 7 else 1
        day = int(value[8:10]) if len(value) >= 10 else 1
        return datetime(year, month, day, tzinfo=_EARLIEST_ZONE)
    except ValueError:
        return None


def period_reversed(start: str, end: str) -> bool:
    """True when a period ends before it starts: as instants when both carry a time, else as calendar dates."""
    start_at, end_at = _instant(start), _instant(end)
    if start_at is not None and end_at is not None:
        return end_at < start_at
    return _date_key(end) < _date_key(start)


def _node_problems(node: dict, rtype: str) -> list[tuple[str, str, str]]:
    """(code, element, message) for one object; used to locate failures found by the fast pass."""
    problems = []
    value = node.get("value")
    if isinstance(value, str):
        code = _identifier_problem(node.get("system"), value, rtype)
        if code:
            problems.append((code, "value", _MESSAGES[code]))
    end, start = node.get("end"), node.get("start")
    if isinstance(end, str) and isinstance(start, str) and period_reversed(start, end):
        problems.append(("period-order", "end", _MESSAGES["period-order"]))
    return problems


_MESSAGES = {
    "nhs-number-invalid": "an NHS number is 10 digits whose last is a modulus 11 check digit; this one is not: "
                          "check it against the child's record (PDS) or leave it out",
    "la-code-unknown": "not a DfE local authority code; use the 3-digit code from the DfE LA list (e.g. 371 for "
                       "Doncaster)",
    "ods-code-invalid": "an ODS code is 3 to 6 upper-case letters and digits (e.g. QF7 for an ICB); correct it",
    "ofsted-urn-invalid": "an Ofsted URN is SC followed by 6 digits, or 7 digits; correct it",
    "period-order": "the end is before the start; correct one of the dates (times are compared as instants, "
                    "with their time zones)",
}

_ODS_FORM = re.compile(r"[A-Z0-9]{3,6}")
_OFSTED_URN_FORM = re.compile(cat.OFSTED_URN_FORM)


def _identifier_problem(system, value: str, rtype: str) -> str | None:
    """The finding code for an identifier value of a known system that is malformed or unknown, else None."""
    if system == cat.NHS_NUMBER:
        return None if nhs_number_is_valid(value) else "nhs-number-invalid"
    if system == cat.DFE_LA_CODE:
        return None if value in _known("dfe-la") else "la-code-unknown"
    if system == cat.ODS_CODE:
        return None if _ODS_FORM.fullmatch(value) else "ods-code-invalid"
    if system == cat.OFSTED_URN and rtype != "Location":  # a setting's URN is checked by its profile's pattern
        return None if _OFSTED_URN_FORM.fullmatch(value) else "ofsted-urn-invalid"
    return None


def _future(value, now: datetime) -> bool:
    earliest = _earliest(value) if isinstance(value, str) else None
    return earliest is not None and earliest > now + CLOCK_SKEW


def findings(event_code: str, index: MessageIndex, now: datetime | None = None) -> Iterator[Finding]:
    now = now or datetime.now(UTC)
    stamp = index.timestamp
    if isinstance(stamp, str):
        moment = _instant(stamp)
        if moment is not None and (moment > now + CLOCK_SKEW or moment < EARLIEST_TIMESTAMP):
            yield Finding("timestamp-out-of-window", "Bundle.timestamp", "the message is dated in the future or "
                          f"before {EARLIEST_TIMESTAMP:%Y-%m-%d}; stamp it with the time it was assembled (with the "
                          "sender's clock set right)", layer="business")
    sent_at: list[str] = []
    incidents: list[tuple[int, str]] = []
    for facts in index.entries:
        resource, rtype, i = facts.resource, facts.resource_type, facts.index
        if any(_identifier_problem(system, value, rtype) for system, value in facts.identifiers) or any(
                period_reversed(start, end) for start, end in facts.periods):
            # Rare: walk again, this time keeping paths, to say where.
            for path, node in _walk(resource, ()):
                for code, element, message in _node_problems(node, rtype):
                    yield Finding(code, entry_location(i, rtype, *path, element), message, layer="business")
        for element in _PAST_ELEMENTS.get(rtype, ()):
            if _future(resource.get(element), now):
                yield Finding("date-in-future", entry_location(i, rtype, element), "this records something that "
                              "has happened, but is dated in the future; check the date and the sender's clock",
                              layer="business")
        if rtype == "Organization" and _is_icb(resource):
            for j, ident in enumerate(_list(resource.get("identifier"))):
                if isinstance(ident, dict) and ident.get("system") == cat.ODS_CODE and \
                        not (isinstance(ident.get("value"), str) and ident["value"] in _known("icb")):
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


def _list(value) -> list:
    """The value when it is a JSON array, else nothing: the rules run on messages the other layers refuse too,
    and must never fail on a wrong JSON type."""
    return value if isinstance(value, list) else []


def _is_icb(resource: dict) -> bool:
    for concept in _list(resource.get("type")):
        for coding in _list(concept.get("coding")) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("code") == "icb" and \
                    coding.get("system") == term.system_url("participant-kind"):
                return True
    return False


def _questionnaire(index: int, resource: dict) -> Iterator[Finding]:
    url = resource.get("questionnaire")
    known = _questions(url) if isinstance(url, str) else None
    if known is None:
        return
    asked, required = known
    answered = set()
    for j, item in enumerate(_list(resource.get("item"))):
        link_id = item.get("linkId") if isinstance(item, dict) else None
        link_id = link_id if isinstance(link_id, str) else None
        answered.add(link_id)
        if link_id not in asked:
            yield Finding("questionnaire-item-unknown",
                          entry_location(index, "QuestionnaireResponse", f"item[{j}]", "linkId"),
                          "this linkId is not a question of the Questionnaire; use the published linkIds",
                          layer="business")
    for link_id in sorted(required - answered):
        yield Finding("questionnaire-item-missing", entry_location(index, "QuestionnaireResponse", "item"),
                      f"the required question '{link_id}' is not answered", layer="business")
