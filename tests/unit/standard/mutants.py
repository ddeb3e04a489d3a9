"""A deterministic, seeded mutator of example messages: the ways senders get FHIR wrong, one or two at a time.

`mutants(examples, count, seed)` gives (name, message) pairs; the same seed always gives the same mutants.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator

_DATE_KEYS = ("birthDate", "date", "start", "end", "sent", "authoredOn", "authored", "recorded", "timestamp",
              "lastModified", "valueDate", "valueDateTime")


def _nodes(doc) -> list[tuple[object, object, object]]:
    """(parent, key, value) for every value below the root, depth first."""
    out = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key, value))
            if isinstance(value, dict | list):
                stack.append(value)
    return out


def _pick(rng: random.Random, doc, want: Callable[[object, object, object], bool]):
    candidates = [n for n in _nodes(doc) if want(*n)]
    return rng.choice(candidates) if candidates else None


def _resources(doc) -> list[dict]:
    return [e["resource"] for e in doc.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def _strings(parent, key, value) -> bool:
    return isinstance(value, str) and key != "resourceType"


def _dates(parent, key, value) -> bool:
    return isinstance(value, str) and key in _DATE_KEYS and len(value) >= 4 and value[:4].isdigit()


def drop_key(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(p, dict) and k != "resourceType")
    if found:
        del found[0][found[1]]


def bad_date(rng, doc):
    found = _pick(rng, doc, _dates)
    if found:
        found[0][found[1]] = rng.choice(["14/05/2012", "2012-5-14", "20120514", "2012-05-14 10:00", "yesterday",
                                         "2012-13-01", "2012-00-10", "0000-01-01"])


def impossible_date(rng, doc):
    found = _pick(rng, doc, _dates)
    if found:
        value = found[0][found[1]]
        day = rng.choice(["2019-02-30", "2023-02-29", "2026-04-31", "2026-06-31", "2026-09-31", "2026-02-29"])
        found[0][found[1]] = day + value[10:] if len(value) >= 10 else day


def valid_leap_day(rng, doc):
    found = _pick(rng, doc, _dates)
    if found:
        value = found[0][found[1]]
        found[0][found[1]] = "2024-02-29" + value[10:] if len(value) >= 10 else "2024-02-29"


def no_zone(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, str) and "T" in v and _dates(p, k, v))
    if found:
        value = found[0][found[1]]
        found[0][found[1]] = rng.choice([value[:19], value[:16], value[:19] + ".123", value[:10] + "T25:00:00Z",
                                         value[:19] + "+15:00", value[:19] + "+0100"])


def time_only_date(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, str) and "T" not in v and _dates(p, k, v))
    if found:
        found[0][found[1]] = found[0][found[1]][:10] + rng.choice(["T10:00:00", "T10:00:00Z", "Z"])


def empty_array(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, list) and v)
    if found:
        found[0][found[1]] = []


def empty_object(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, dict) and k != "resource")
    if found:
        found[0][found[1]] = {}


def empty_string(rng, doc):
    found = _pick(rng, doc, _strings)
    if found:
        found[0][found[1]] = rng.choice(["", " ", "  \n", "\u00a0"])


def unknown_key(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, dict))
    if found:
        found[2][rng.choice(["favouriteColour", "Value", "valueText", "resourceType", "fhir_comments",
                             "_status", "extension"])] = rng.choice(["blue", {"x": 1}, [1]])


def wrong_type(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: k != "resourceType")
    if found:
        value = found[2]
        options = [12345, 1.5, True, None, "12345", "true", {"value": "x"}, ["x"], [value]]
        found[0][found[1]] = rng.choice([o for o in options if o != value])


def unwrap_list(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, list) and v and isinstance(p, dict))
    if found:
        found[0][found[1]] = found[2][0]


def huge_string(rng, doc):
    found = _pick(rng, doc, _strings)
    if found:
        found[0][found[1]] = "x" * rng.choice([1024 * 1024 + 1, 1024 * 1024])


def whitespace(rng, doc):
    found = _pick(rng, doc, _strings)
    if found:
        value = found[0][found[1]]
        found[0][found[1]] = rng.choice([" " + value, value + " ", value[:2] + "  " + value[2:], value + "\t",
                                         value[:1] + " " + value[1:]])


def duplicate_id(rng, doc):
    resources = _resources(doc)
    if len(resources) >= 3:
        a, b = rng.sample(resources[1:], 2)
        a["id"] = b["id"] = rng.choice(["same", "x1"])
        if rng.random() < 0.5:
            b["resourceType"] = a["resourceType"]


def duplicate_full_url(rng, doc):
    entries = doc.get("entry", [])
    if len(entries) >= 3:
        a, b = rng.sample(entries[1:], 2)
        b["fullUrl"] = a["fullUrl"]


def contained(rng, doc):
    resources = _resources(doc)
    if len(resources) >= 2:
        host = rng.choice(resources[1:])
        hidden = copy.deepcopy(rng.choice(resources))
        hidden["id"] = "hidden"
        if rng.random() < 0.3:
            hidden = {"resourceType": "Patient", "id": "hidden", "name": [{"family": "Other"}],
                      "birthDate": "2012-02-30"}
        host["contained"] = [hidden]


def future_date(rng, doc):
    found = _pick(rng, doc, _dates)
    if found:
        value = found[0][found[1]]
        year = rng.choice(["2099", "2027", "2026-12"])
        found[0][found[1]] = year + value[len(year):] if len(value) > len(year) else year


def ancient_timestamp(rng, doc):
    doc["timestamp"] = rng.choice(["1971-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "2023-12-31T23:59:59Z",
                                   "2024-01-01T00:00:00Z"])


def second_choice(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(p, dict) and isinstance(k, str) and k.startswith("value")
                  and k != "value")
    if found:
        found[0]["valueBoolean" if found[1] != "valueBoolean" else "valueString"] = True


def period_same_day(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, dict) and "start" in v)
    if found:
        day = found[2]["start"][:10] if isinstance(found[2]["start"], str) else "2026-03-02"
        found[2]["start"], found[2]["end"] = rng.choice([
            (f"{day}T10:00:00Z", f"{day}T09:00:00Z"), (f"{day}T10:00:00+01:00", f"{day}T09:30:00Z"),
            (f"{day}T10:00:00Z", f"{day}T10:30:00+01:00"), (f"{day}T09:00:00Z", f"{day}T10:00:00Z")])


def destination(rng, doc):
    doc["entry"][0]["resource"]["destination"] = [{"endpoint": "urn:x", "receiver": {"identifier": {
        "system": "https://safeguarding-exchange.org.uk/fhir/Id/participant", "value": "la-886"}}}]


def null_in_list(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, list) and v)
    if found:
        found[2].append(None)


def bad_identifier(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, dict) and "system" in v and "value" in v)
    if found:
        found[2]["value"] = rng.choice(["SC12", "943 476 5919", "9434765919", "qf7", "QF7", "ABCDEFG", "1234567"])


def bad_number(rng, doc):
    found = _pick(rng, doc, lambda p, k, v: isinstance(v, int | float) and not isinstance(v, bool))
    if found:
        found[0][found[1]] = rng.choice([-1, 0, 2**31, 1.0, 3.5, "5"])


MUTATIONS: tuple[Callable[[random.Random, dict], None], ...] = (
    drop_key, bad_date, impossible_date, valid_leap_day, no_zone, time_only_date, empty_array, empty_object,
    empty_string, unknown_key, wrong_type, unwrap_list, huge_string, whitespace, duplicate_id, duplicate_full_url,
    contained, future_date, ancient_timestamp, second_choice, period_same_day, destination, null_in_list,
    bad_identifier, bad_number,
)


def mutants(examples: dict[str, dict], count: int, seed: int = 9) -> Iterator[tuple[str, dict]]:
    """`count` mutants of the examples, each with one to three mutations; deterministic for a seed."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    names = sorted(examples)
    for n in range(count):
        name = names[n % len(names)]
        doc = copy.deepcopy(examples[name])
        applied = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            mutation = MUTATIONS[rng.randrange(len(MUTATIONS))] if applied or n >= len(MUTATIONS) * len(names) \
                else MUTATIONS[(n // len(names)) % len(MUTATIONS)]
            try:
                mutation(rng, doc)
            except (IndexError, KeyError, TypeError, AttributeError):
                continue  # an earlier mutation removed what this one works on
            applied.append(mutation.__name__)
        yield f"{n:04d}-{name}-{'+'.join(applied)}", doc
