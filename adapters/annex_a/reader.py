"""Read Ofsted's Annex A workbook: List 8 (children looked after) gives each child's current placement.

Quirks kept here: headers are renamed from LA to LA, so columns are found by what their header says
(liia-tools' regular expressions, simplified); values come labelled ("a) Male", "E1: Placement order",
"f) U6: Foster placement - not FFA", "e) PR4 - Private provision") and the SSDA903 code is taken out of the
label; dates are real dates or dd/mm/yyyy text; the "LA of Placement" is a code, an ONS code, a name or
CON for a confidential placement. Lists other than 8 are not read: the exchange does not use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from adapters.base import Problem, Reader, Record, Refused
from adapters.placements import ChildDetails, Placement, child_facts, sequence_problem
from adapters.ssda903_csv.reader import parse_date
from adapters.text import FORMULA_ADVICE, formula_like
from adapters.xlsx import opened, sheet_header, sheet_rows, where
from standard import terminology as term

# Our field <- a pattern its header matches (lower case), most specific first.
LIST_8: dict[str, str] = {
    "CHILD": r"child.*\b(unique )?(id|identifier)\b",
    "SEX": r"^gender$|^sex$",
    "DOB": r"date.*birth",
    "LS": r"child.*legal status",
    "DECOM": r"start date of most recent placement",
    "PLACE": r"^placement type",
    "PLACE_PROVIDER": r"^placement provider",
    "PL_POST": r"^placement postcode",
    "URN": r"^urn of placement",
    "PL_LA": r"^la of placement",
    "DEC": r"date ceased to be looked after",
    "REC": r"reason ceased to be looked after",
    "LA": r"^(la|local authority|la code|la name)$",  # regional files: whose row it is (checked against --la)
}
REQUIRED = ("CHILD", "DOB", "DECOM", "PLACE")
DATES = frozenset({"DOB", "DECOM", "DEC"})
_CODED = {"LS": "ssda903-legal-status", "PLACE": "ssda903-placement-type",
          "PLACE_PROVIDER": "ssda903-placement-provider", "REC": "ssda903-reason-episode-ceased"}


def code_in_label(label: str, valid: frozenset[str]) -> str | None:
    """`f) U6: Foster placement - not FFA` -> `U6`; the first token of the label that is a valid code."""
    text = re.sub(r"^[a-z]{1,2}\)\s*", "", label.strip())
    for token in re.findall(r"[A-Za-z0-9]+", text):
        if token.upper() in valid:
            return token.upper()
    return None


def sex_in_label(label: str) -> str | None:
    text = re.sub(r"^[a-z]\)\s*", "", label.strip().lower())
    return {"male": "M", "female": "F", "1": "M", "2": "F", "m": "M", "f": "F"}.get(text, "U" if text else None)


class AnnexAReader(Reader):
    """Yields `list_8` records with SSDA903 field names (CHILD, SEX, DOB, LS, DECOM, PLACE, ...)."""

    name = "annex-a"

    def __init__(self) -> None:
        self.valid = {field: term.code_systems()[system].codes for field, system in _CODED.items()}

    def read(self, path: Path) -> Iterator[Record | Problem]:
        with opened(path) as (workbook, problems):
            yield from problems
            if workbook is None:
                return
            sheet = next((s for s in workbook.worksheets if re.fullmatch(r"list\s*8", s.title.strip().lower())), None)
            if sheet is None:
                yield Problem("missing-sheet", path.name, None, None, "the workbook has no 'List 8' sheet (children "
                              "looked after); export Annex A with its sheet names unchanged")
                return
            yield from self._rows(sheet, where(path.name, sheet.title))

    def _rows(self, sheet, file: str) -> Iterator[Record | Problem]:
        headings = [h for h in sheet_header(sheet) if h]
        columns = {field: next((h for h in headings if re.search(pattern, h.lower())), "")
                   for field, pattern in LIST_8.items()}
        missing = [f for f in REQUIRED if not columns[f]]
        if missing:
            yield Problem("missing-column", file, 1, None, "List 8 has no column for " + ", ".join(missing) +
                          "; keep Ofsted's column headings")
            return
        for item in sheet_rows(sheet, file, used=(h for h in columns.values() if h), refusals=True):
            if isinstance(item, Problem | Refused):
                yield item
                continue
            number, cells = item
            values: dict[str, object] = {}
            problems: list[Problem] = []
            for field, header in columns.items():
                if not header:
                    continue  # the workbook has no such column (LA, in a single authority's workbook)
                cell = cells.get(header)
                values[field], problem = self._clean(field, cell.value if cell else None, file, number, header)
                if problem:
                    problems.append(problem)
            for field in REQUIRED:
                if values.get(field) is None and not any(p.field == columns[field] for p in problems):
                    problems.append(Problem("missing-value", file, number, columns[field], "a value is needed here "
                                            "for placement notifications; record it"))
            yield from problems
            if problems:
                yield Refused(file, number)
            else:
                yield Record("list_8", number, values, file)

    def _clean(self, field: str, raw: object, file: str, number: int, header: str) -> tuple[object, Problem | None]:
        if raw is None:
            return None, None
        if field in DATES:
            parsed = raw if isinstance(raw, date) else parse_date(str(raw))
            if parsed is None:
                return None, Problem("bad-date", file, number, header, "not a date (a date cell or dd/mm/yyyy); "
                                     "correct it in the case management system")
            return parsed, None
        text = str(raw)
        if field == "SEX":
            return sex_in_label(text), None
        if field in _CODED:
            code = code_in_label(text, self.valid[field])
            if code is None:
                return None, Problem("bad-code", file, number, header, "the value holds no SSDA903 code the "
                                     "exchange knows; use the Annex A category list")
            return code, None
        if formula_like(text):
            return None, Problem("formula-text", file, number, header, FORMULA_ADVICE)
        if field == "URN":
            return text.upper(), None
        return text, None


def placements_from(records: list[Record], problems: list[Problem] | None = None,
                    ) -> tuple[dict[str, ChildDetails], list[Placement]]:
    """Each List 8 row as the child's current placement (ended when the child ceased to be looked after).
    Rows for one child that disagree on date of birth or sex, or whose placements overlap, hold the child's
    messages back with a finding."""
    children = child_facts(records, {"DOB": "Date of Birth", "SEX": "Gender"}, table_word="List 8 rows",
                           conflicts=problems)
    by_child: dict[str, list[Record]] = {}
    for r in records:
        by_child.setdefault(r.values["CHILD"], []).append(r)
    held: set[str] = set()
    for child, rows in by_child.items():
        rows.sort(key=lambda r: r.values["DECOM"])
        broken = sequence_problem(rows, start="DECOM", end="DEC")
        if broken:
            held.add(child)
            if problems is not None:
                problems.append(Problem(broken.code, broken.file, broken.row, _HEADING.get(broken.field, broken.field),
                                        broken.message.replace("episode", "placement")))
    found: list[Placement] = []
    for r in records:
        v = r.values
        p = Placement(v["CHILD"], v["DECOM"], v["PLACE"], v.get("URN"), v.get("LS") or "", v.get("PLACE_PROVIDER"),
                      row=r.row, postcode=v.get("PL_POST"), authority=v.get("PL_LA"), file=r.file,
                      columns=("LA of Placement", "URN of Placement"), rows=[r.where], held=v["CHILD"] in held)
        if v.get("DEC"):
            p.end = v["DEC"]
            p.end_reason = ("ssda903-reason-episode-ceased", v["REC"]) if v.get("REC") else None
        found.append(p)
    return children, found


_HEADING = {"DECOM": "Start Date of Most Recent Placement", "DEC": "Date Ceased to be Looked After"}
