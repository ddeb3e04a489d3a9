"""The validator: `is_valid`, `iter_findings` and `validate`, in layers.

1. parse     bytes to JSON, size cap, the event named by the MessageHeader
2. schema    the event's generated JSON Schema (cardinality, fixed values, bindings, formats)
3. fhir      FHIR R4 base rules in one fast walk: elements, types, cardinality, primitive formats and calendar,
             empty values, string size; no contained resources
4. structure FHIR R4 through the fhir.resources models: the reference the fhir layer is held to (full only)
5. profile   bdl-7, bdl-12, focus and references resolve inside the Bundle, reference target types, unique ids
6. business  identifier formats and check digits, known codes, date order, no future dates, questionnaires

One verdict: the router runs the hot path (every layer but structure) and refuses exactly what full validation
(`sgx standard validate`) refuses, with the same finding codes, because the fhir layer is at least as strict as
the models (tests/unit/standard/test_one_verdict.py holds it to that over the case suite and generated mutants).
Full validation reports a models' finding only for a resource the fhir layer found nothing wrong with, so the
same problem is not reported twice; such a finding would be a gap in the fhir layer, and the test fails on it.

Time is injected: `now` (a datetime or a callable returning one, default the real clock) is what "future"
and the Bundle.timestamp window are judged against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from standard import catalogue as cat
from standard.errors import MessageInvalid
from standard.validator import business_rules, fhir_fast, fhir_layer, profile_rules, schema_layer
from standard.validator.findings import ERROR, FINDING_CODES, Finding
from standard.validator.index import index_message

__all__ = ["Finding", "FINDING_CODES", "Validator", "is_valid", "iter_findings", "validate", "HOT_PATH", "FULL",
           "event_of"]

FULL = ("parse", "schema", "fhir", "structure", "profile", "business")
HOT_PATH = ("parse", "schema", "fhir", "profile", "business")
MAX_MESSAGE_BYTES = 5 * 1024 * 1024


def event_of(doc: Any) -> str | None:
    """The event code named by the message's MessageHeader, if any (first entry preferred)."""
    entries = doc.get("entry") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "MessageHeader":
            coding = resource.get("eventCoding")
            code = coding.get("code") if isinstance(coding, dict) else None
            return code if isinstance(code, str) else None
    return None


class Validator:
    """Validates messages against the standard.

    Args:
        layers: which layers to run, in order; HOT_PATH or FULL (the default).
        max_bytes: messages larger than this are refused before parsing.
        now: the current time (an aware datetime, or a callable returning one); default the real clock.
    """

    def __init__(self, layers: Iterable[str] = FULL, *, max_bytes: int = MAX_MESSAGE_BYTES,
                 now: datetime | Callable[[], datetime] | None = None):
        self.layers = tuple(layers)
        unknown = set(self.layers) - set(FULL)
        if unknown:
            raise ValueError(f"unknown validation layers {sorted(unknown)}; choose from {FULL}")
        self.max_bytes = max_bytes
        if "fhir" in self.layers:
            fhir_fast.validator()  # built once per process (about 2 s): here, not inside the first message's time
        if now is None:
            self._now: Callable[[], datetime] = lambda: datetime.now(UTC)
        elif isinstance(now, datetime):
            self._now = lambda: now
        else:
            self._now = now

    def parse(self, message: bytes | str | dict, *, keys_unique: bool = False) -> tuple[dict | None, list[Finding]]:
        """Turn raw bytes into a JSON object, or say why not. `keys_unique`: the caller wrote these bytes itself
        from a dict (a serialiser writes each key of a dict once), so the check for a repeated key is skipped."""
        if isinstance(message, dict):
            return message, []
        raw = message.encode() if isinstance(message, str) else message
        if len(raw) > self.max_bytes:
            return None, [Finding("message-too-large", "Bundle", f"the message is {len(raw)} bytes; the exchange "
                                  f"accepts at most {self.max_bytes}; send large reports as attachments by "
                                  "reference", layer="parse")]
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return None, [Finding("json-invalid", "Bundle", f"not valid JSON ({_position(exc)}); check the "
                                  "sender's serialiser", layer="parse")]
        if not isinstance(doc, dict):
            return None, [Finding("json-invalid", "Bundle", "a message must be a JSON object (a FHIR Bundle)",
                                  layer="parse")]
        if not keys_unique and _has_duplicate_keys(raw, doc):
            return None, [Finding("json-duplicate-key", "Bundle", "an object in the message gives the same key "
                                  "twice; JSON parsers disagree on which value counts, so the message is refused: "
                                  "fix the sender's serialiser", layer="parse")]
        return doc, []

    def iter_findings(self, message: bytes | str | dict) -> Iterator[Finding]:
        """Yield every finding for a message; nothing when it is valid."""
        doc, problems = self.parse(message)
        if problems:
            yield from problems
            return
        event_code = event_of(doc)
        if event_code not in cat.EVENTS_BY_CODE:
            yield Finding("event-unknown", "Bundle.entry[0].resource.ofType(MessageHeader).eventCoding.code",
                          "the message has no MessageHeader naming an event of the catalogue; known events: "
                          + ", ".join(cat.EVENTS_BY_CODE), layer="parse")
            return
        if "schema" in self.layers:
            yield from schema_layer.findings(event_code, doc)
        flagged: set[str] = set()
        if "fhir" in self.layers:
            for finding in fhir_layer.findings(doc):
                flagged.add(_resource_of(finding.location))
                yield finding
        if "structure" in self.layers:
            from standard.validator import structure_layer  # imports the FHIR models: ~0.4 s, only when asked

            for finding in structure_layer.findings(doc):
                if _resource_of(finding.location) not in flagged:
                    yield finding
        if "profile" in self.layers or "business" in self.layers:
            index = index_message(doc)
            if "profile" in self.layers:
                yield from profile_rules.findings(event_code, index)
            if "business" in self.layers:
                yield from business_rules.findings(event_code, index, self._now())

    def is_valid(self, message: bytes | str | dict) -> bool:
        """True when the message has no error finding."""
        return not any(f.severity == ERROR for f in self.iter_findings(message))

    def validate(self, message: bytes | str | dict, *, keys_unique: bool = False) -> dict:
        """Return the parsed message, or raise MessageInvalid carrying every error finding. `keys_unique`: as
        for `parse`."""
        doc, problems = self.parse(message, keys_unique=keys_unique)
        errors = problems or [f for f in self.iter_findings(doc) if f.severity == ERROR]
        if errors:
            raise MessageInvalid(errors)
        return doc


def _resource_of(location: str) -> str:
    """The resource a location is in: ``Bundle.entry[3]`` for an entry's resource, ``Bundle`` for the envelope."""
    if location.startswith("Bundle.entry["):
        end = location.index("]") + 1
        rest = location[end:]
        if rest == ".resource" or rest.startswith(".resource."):
            return location[:end]
    return "Bundle"


def _has_duplicate_keys(raw: bytes, doc: dict) -> bool:
    r"""Whether the raw JSON repeats a key in an object (orjson keeps the last value silently).

    Fast and sound: a colon is either the end of a key or a character inside a string. Re-serialising what
    orjson kept writes one colon per kept key and every string's colons as they are. So unless the raw text
    writes a colon as an escape (\u003a: then the exact check runs), it has more colons than the re-serialised
    text exactly when a key was repeated. Counting costs a few microseconds; the exact parse, a hundred."""
    if b"\\u003" in raw:
        return _repeats_a_key(raw)
    return raw.count(b":") != orjson.dumps(doc).count(b":") and _repeats_a_key(raw)


def _repeats_a_key(raw: bytes) -> bool:
    def pairs(items: list[tuple[str, object]]) -> dict:
        if len({k for k, _ in items}) != len(items):
            raise _Repeated
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except _Repeated:
        return True
    return False


class _Repeated(Exception):
    pass


def _position(exc: orjson.JSONDecodeError) -> str:
    return f"line {exc.lineno}, column {exc.colno}"


_default = Validator()


def iter_findings(message: bytes | str | dict) -> Iterator[Finding]:
    """Every finding of full validation."""
    return _default.iter_findings(message)


def is_valid(message: bytes | str | dict) -> bool:
    """True when full validation finds no error."""
    return _default.is_valid(message)


def validate(message: bytes | str | dict) -> dict:
    """Full validation; raises MessageInvalid with the findings."""
    return _default.validate(message)
