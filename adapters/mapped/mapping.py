"""The mapping file: which column of a log is which message field, how its codes and dates are written.

A mapping is TOML (read with the standard library), so an LA can map its LADO log or complaints log
without code. Example (see examples/mappings/ for complete ones):

    event = "allegation-referral"

    [source]
    sheet = "LADO log"                 # XLSX: the sheet to read (default: the first)
    date_formats = ["%d/%m/%Y"]        # how the log writes dates

    [columns]                          # message field = "heading in the log"
    reference = "LADO ref"
    date = "Date received"
    setting_urn = "Ofsted URN"
    category = "Allegation type"
    staff_id = "Staff ID"

    [codes.category]                   # the log's words -> the standard's codes
    "Physical" = "physical-abuse"

    [fixed]                            # fields the log does not hold, the same for every row
    concern_type = "complaint"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from standard import terminology as term
from standard.errors import MappingError

# event -> (required fields, optional fields); fields named after what they fill in the message.
_CHILD = ("child_id", "child_la", "child_birth_date", "child_sex")
# `la` is the authority a row belongs to, in a log several authorities keep together: checked against the
# sender's own authority, so that no row goes out under another authority's identity.
EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "allegation-referral": (("reference", "date", "setting_urn", "category", "staff_id"),
                            ("job", "summary", "employer", "la", *_CHILD)),
    "concern-notification": (("date", "setting_urn", "concern_type"), ("reference", "summary", "la", *_CHILD)),
}
DATE_FIELDS = frozenset({"date", "child_birth_date"})
# Coded fields and the code system their values must come from after translation.
CODED = {"category": "allegation-category", "concern_type": "concern-type"}
SEX = {"M": "M", "F": "F", "U": "U", "MALE": "M", "FEMALE": "F", "1": "M", "2": "F"}


@dataclass
class Mapping:
    event: str
    columns: dict[str, str]
    fixed: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    sheet: str | None = None
    date_formats: tuple[str, ...] = ("%d/%m/%Y", "%Y-%m-%d")
    delimiter: str = ","
    path: str = "mapping"

    @property
    def required(self) -> tuple[str, ...]:
        return EVENTS[self.event][0]

    @classmethod
    def load(cls, path: Path) -> Mapping:
        where = path.name
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MappingError(f"{where}: not valid TOML ({exc}); fix the file") from None
        event = data.get("event")
        if event not in EVENTS:
            raise MappingError(f"{where}: event must be one of {', '.join(EVENTS)}; got {event!r}")
        required, optional = EVENTS[event]
        known = set(required) | set(optional)
        columns = {str(k): str(v) for k, v in data.get("columns", {}).items()}
        fixed = {str(k): str(v) for k, v in data.get("fixed", {}).items()}
        for key in [*columns, *fixed]:
            if key not in known:
                raise MappingError(f"{where}: [columns] or [fixed] names '{key}', which {event} does not have; "
                                   f"use some of: {', '.join(sorted(known))}")
        missing = [f for f in required if f not in columns and f not in fixed]
        if missing:
            raise MappingError(f"{where}: {event} needs {', '.join(missing)}: map a column to each under [columns] "
                               "or give a value under [fixed]")
        codes = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.get("codes", {}).items()}
        for name, table in codes.items():
            system = CODED.get(name)
            if system is None:
                continue
            valid = term.code_systems()[system].codes
            wrong = sorted(set(table.values()) - valid)
            if wrong:
                raise MappingError(f"{where}: [codes.{name}] translates to {', '.join(wrong)}, not codes of "
                                   f"{system} ({', '.join(sorted(valid))})")
        for name, value in fixed.items():
            if name in CODED and value not in term.code_systems()[CODED[name]].codes:
                raise MappingError(f"{where}: [fixed] {name} = {value!r} is not a code of {CODED[name]}")
        source = data.get("source", {})
        formats = tuple(source.get("date_formats", cls.date_formats))
        return cls(event, columns, fixed, codes, source.get("sheet"), formats, source.get("delimiter", ","), where)
