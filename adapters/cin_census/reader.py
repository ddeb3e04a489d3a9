"""Read the CIN census XML (2017 to 2026 schemas) for the signals the exchange carries: Section 47 enquiries
and child protection plans about children this authority has placed in another area.

Quirks kept here: the child's sex is GenderCurrent (1, 2, 0, 9) up to 2024 and Sex (M, F, U) from 2025,
and some files mix the two or put 1/2 in Sex; yes/no flags come as true/false or 1/0; dates are yyyy-mm-dd;
the header's LEA says which authority made the file. Parsing is safe (adapters/xmlsafe.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from adapters.base import Problem, Reader, Record, Refused, numbered
from adapters.concerns import Signal
from adapters.placements import ChildDetails, child_facts
from adapters.xmlsafe import elements, local

_SIGNALS = {"S47ActualStartDate": "s47", "CPPstartDate": "cpp"}  # element -> record table
_SEX = {"1": "M", "2": "F", "0": "U", "9": "U", "M": "M", "F": "F", "U": "U"}


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


class CinCensusReader(Reader):
    """Yields `source` (LEA), `child` (CHILD, DOB, SEX), `s47` (CHILD, DATE) and `cpp` (CHILD, DATE,
    CATEGORY) records."""

    name = "cin"

    def _moved(self, position: int) -> None:
        self.position = position

    def read(self, path: Path) -> Iterator[Record | Problem | Refused]:
        return numbered(self._read(path))

    def _read(self, path: Path) -> Iterator[Record | Problem | Refused]:
        name = path.name
        for element in elements(path, ("Source", "Child"), self._moved):
            if isinstance(element, Problem):
                yield element
            elif local(element.tag) == "Source":
                lea = self._text(element, "LEA")
                yield Record("source", element.sourceline or 0, {"LEA": lea}, name)
            else:
                yield from self._child(element, name)

    @staticmethod
    def _text(element, tag: str) -> str | None:
        for node in element.iter():
            if local(node.tag) == tag:
                return (node.text or "").strip() or None
        return None

    def _child(self, element, name: str) -> Iterator[Record | Problem]:
        line = element.sourceline or 0
        first: dict[str, str | None] = {}  # each tag's first text, from one walk of the child's elements
        stray, signals = [], []
        for node in element.iter():
            tag = local(node.tag)
            first.setdefault(tag, (node.text or "").strip() or None)
            if node is not element and (node.tail or "").strip():
                stray.append(Problem("stray-text", name, node.sourceline, tag, "text sits outside any element "
                                     "after this one; remove it from the export"))
            if tag in _SIGNALS:
                signals.append(node)
        child = first.get("LAchildID")
        if child is None:
            yield Problem("missing-value", name, line, "LAchildID", "every child needs its LA child id; the child "
                          "was skipped")
            yield Refused(name, line)
            return
        yield from stray
        values: dict[str, object] = {"CHILD": child}
        birth = first.get("PersonBirthDate")
        values["DOB"] = _date(birth)
        if birth and values["DOB"] is None:
            yield Problem("bad-date", name, line, "PersonBirthDate", "not a date in yyyy-mm-dd form; correct it "
                          "in the case management system")
        sex = first.get("Sex") or first.get("GenderCurrent")
        values["SEX"] = _SEX.get((sex or "").upper())
        if sex and values["SEX"] is None:
            yield Problem("bad-code", name, line, "Sex", "Sex must be M, F or U (GenderCurrent 1, 2, 0 or 9 before "
                          "2025); correct it in the case management system")
        yield Record("child", line, values, name)
        for node in signals:
            tag = local(node.tag)
            started = _date(node.text)
            if started is None:
                yield Problem("bad-date", name, node.sourceline, tag, "not a date in yyyy-mm-dd form; the record "
                              "was skipped: correct it in the case management system")
                yield Refused(name, node.sourceline or line)
                continue
            record = {"CHILD": child, "DATE": started}
            if _SIGNALS[tag] == "cpp":
                parent = node.getparent()
                record["CATEGORY"] = self._text(parent, "InitialCategoryOfAbuse") if parent is not None else None
            yield Record(_SIGNALS[tag], node.sourceline or 0, record, name)


def signals_of(la_code: str, records: dict[str, list[Record]]) -> tuple[list[Signal], dict[str, ChildDetails],
                                                                    list[Problem], bool]:
    """The census's Section 47 enquiries and child protection plans as signals, with the children's details
    and the problems found (children whose entries disagree); nothing, and True, when the file is another
    authority's."""
    for source in records.get("source", []):
        if source.values.get("LEA") and source.values["LEA"] != la_code:
            return [], {}, [Problem("wrong-authority", source.file, source.row, "LEA", f"the file is from LA "
                                    f"{source.values['LEA']}, not {la_code}; nothing in it was sent: run it with "
                                    "that authority's --la")], True
    problems: list[Problem] = []
    children = child_facts(records.get("child", []), {"DOB": "PersonBirthDate", "SEX": "Sex"},
                           table_word="Child entries", conflicts=problems)
    signals = [Signal(concern_type, r.values["CHILD"], r.values["DATE"], r.file, r.row, r.values.get("CATEGORY"),
                      r.where)
               for kind, concern_type in (("s47", "section-47-enquiry"), ("cpp", "child-protection-plan"))
               for r in records.get(kind, [])]
    return signals, children, problems, False
