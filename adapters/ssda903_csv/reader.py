"""Read SSDA903 CSV tables. Quirks of the format stay here:

- a table is recognised by its required columns; a column no table has is a finding and is ignored (liia's
  cleaned outputs add LA and YEAR, allowed; LA, in regional files, is checked against the sender);
- dates come as dd/mm/yyyy (DfE) or yyyy-mm-dd (liia cleaned files);
- SEX is 1/2 up to 2023-24 and M/F/U from 2024-25: both read, returned as M/F/U;
- files may carry a UTF-8 BOM, CRLF line ends, no final newline, or be saved as Windows-1252
  (see adapters/text.py: read as a stream, so a 200 MB file takes no more memory than a small one).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from adapters.base import Problem, Reader, Record, Refused
from adapters.text import FORMULA_ADVICE, TextSource, formula_like
from standard import terminology as term

TABLES: dict[str, tuple[str, ...]] = {
    "header": ("CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"),
    "episodes": ("CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
                 "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"),
    "uasc": ("CHILD", "SEX", "DOB", "DUC"),
    "missing": ("CHILD", "DOB", "MISSING", "MIS_START", "MIS_END"),
    "reviews": ("CHILD", "DOB", "REVIEW", "REVIEW_CODE"),
    "oc2": ("CHILD", "DOB", "SDQ_SCORE", "SDQ_REASON", "CONVICTED", "HEALTH_CHECK", "IMMUNISATIONS", "TEETH_CHECK",
            "HEALTH_ASSESSMENT", "SUBSTANCE_MISUSE", "INTERVENTION_RECEIVED", "INTERVENTION_OFFERED"),
    "oc3": ("CHILD", "DOB", "IN_TOUCH", "ACTIV", "ACCOM"),
    "ad1": ("CHILD", "DOB", "DATE_INT", "DATE_MATCH", "FOSTER_CARE", "NB_ADOPTR", "SEX_ADOPTR", "LS_ADOPTR"),
    "placed_for_adoption": ("CHILD", "DOB", "DATE_PLACED", "DATE_PLACED_CEASED", "REASON_PLACED_CEASED"),
    "previous_permanence": ("CHILD", "DOB", "PREV_PERM", "LA_PERM", "DATE_PERM"),
    "social_worker": ("CHILD", "DOB", "SW_ID", "SW_DECOM", "SW_DEC", "SW_REASON"),
    "dolo": ("CHILD", "DOB", "DOLO_START", "DOLO_END"),
}
DATE_FIELDS = frozenset({"DOB", "MC_DOB", "DECOM", "DEC", "DUC", "MIS_START", "MIS_END", "REVIEW", "DATE_INT",
                         "DATE_MATCH", "DATE_PLACED", "DATE_PLACED_CEASED", "DATE_PERM", "SW_DECOM", "SW_DEC",
                         "DOLO_START", "DOLO_END"})
# Free text and identifiers keep their case; codes are upper-cased (the DfE validator does the same).
KEEP_CASE = frozenset({"CHILD", "SW_ID", "LA"})
# Numeric fields: a negative or signed number there is a number, not a formula (see text.formula_like).
ALLOWED_EXTRA = frozenset({"LA", "YEAR"})
# Columns some exports add that the exchange uses: the placement's LA (DfE derives it from PL_POST;
# case management systems that record it can export it) helps find where a child lives.
OPTIONAL: dict[str, frozenset[str]] = {"episodes": frozenset({"PL_LA"})}
SEX_CODES = {"1": "M", "2": "F", "M": "M", "F": "F", "U": "U"}
RNE_CODES = frozenset({"S", "P", "L", "T", "U", "B"})
# Coded fields the exchange sends, checked against the standard's SSDA903 code systems.
CODED = {"LS": "ssda903-legal-status", "PLACE": "ssda903-placement-type",
         "PLACE_PROVIDER": "ssda903-placement-provider", "REC": "ssda903-reason-episode-ceased",
         "REASON_PLACE_CHANGE": "ssda903-reason-placement-change"}
MAX_FIELD = 10_000


def parse_date(text: str) -> date | None:
    """dd/mm/yyyy or yyyy-mm-dd; None for anything else (sliced by hand: strptime is the slowest step of
    reading a large export)."""
    if len(text) != 10 or not text.isascii():
        return None
    try:
        if text[2] == "/" and text[5] == "/" and (text[:2] + text[3:5] + text[6:]).isdigit():
            return date(int(text[6:]), int(text[3:5]), int(text[:2]))
        if text[4] == "-" and text[7] == "-" and (text[:4] + text[5:7] + text[8:]).isdigit():
            return date(int(text[:4]), int(text[5:7]), int(text[8:]))
    except ValueError:
        return None
    return None


def recognise(columns: list[str]) -> tuple[str | None, str]:
    """The table a header names (the one with most columns all present; columns beyond it are reported by
    `unknown_columns` and ignored), or None with what is missing or extra from the closest table."""
    got = {c.strip().upper() for c in columns}
    complete = [table for table, expected in TABLES.items() if set(expected) <= got]
    if complete:
        return max(complete, key=lambda t: (len(TABLES[t]), -len(got - set(TABLES[t])))), ""
    best, best_score = next(iter(TABLES)), float("-inf")
    for table, expected in TABLES.items():
        score = len(set(expected) & got) - len(got ^ set(expected))
        if score > best_score:
            best, best_score = table, score
    expected = set(TABLES[best])
    missing = sorted(expected - got)
    extra = sorted(got - expected - ALLOWED_EXTRA - OPTIONAL.get(best, frozenset()))
    # The other headings are counted, never shown: in a file without a heading row they are a child's data.
    detail = (f"closest is the {best} table: missing {', '.join(missing) or 'nothing'}; "
              f"{len(extra)} other heading(s)")
    if not expected & got:
        detail += "; the first row holds no SSDA903 heading at all: the file may have no heading row"
    return None, detail


def unknown_columns(table: str, columns: list[str]) -> list[str]:
    """Columns of a recognised table that no SSDA903 table of that name has (nor LA, YEAR, PL_LA)."""
    known = set(TABLES[table]) | ALLOWED_EXTRA | OPTIONAL.get(table, frozenset())
    return [c for c in columns if c not in known]


def clean(column: str, cell: str, file: str, row: int) -> tuple[object, Problem | None]:
    """One SSDA903 value as the rest of the system wants it: None for blank, dates parsed, codes upper-cased,
    SEX as M/F/U; or a problem naming the field (never the value)."""
    cell = cell.strip()
    if not cell:
        return None, None
    if column in DATE_FIELDS:
        parsed = parse_date(cell)
        if parsed is None:
            return None, Problem("bad-date", file, row, column, "not a date in dd/mm/yyyy or yyyy-mm-dd form; "
                                 "correct it in the case management system")
        return parsed, None
    if column == "SEX":
        code = SEX_CODES.get(cell.upper())
        if code is None:
            return None, Problem("bad-code", file, row, column,
                                 "SEX must be 1 or 2 (to 2023-24) or M, F or U (from 2024-25)")
        return code, None
    valid = _valid_codes().get(column)
    if valid is None and formula_like(cell):
        return None, Problem("formula-text", file, row, column, FORMULA_ADVICE)
    if column in KEEP_CASE:
        return cell, None
    code = cell.upper()
    if valid is not None and code not in valid:
        return None, Problem("bad-code", file, row, column, f"not a {column} code of the SSDA903 guide for any year "
                             "the exchange knows; correct it in the case management system")
    return code, None


@functools.cache
def _valid_codes() -> dict[str, frozenset[str]]:
    systems = term.code_systems()
    return {"RNE": RNE_CODES, **{column: systems[system].codes for column, system in CODED.items()}}


_NOT_SEEN = object()
# What is remembered, so that memory stays bounded whatever the file: short cells only (codes, dates, identifiers,
# postcodes; never long free text), and at most this many per column (every child of a large export).
_REMEMBERED_LENGTH = 32
_REMEMBERED_PER_COLUMN = 100_000


class Ssda903CsvReader(Reader):
    name = "ssda903"

    def read(self, path: Path) -> Iterator[Record | Problem]:
        name = path.name
        with TextSource(path) as source:
            lines = source.lines()
            first_line = next(lines, "")
            yield from source.take_problems()
            if "," not in first_line and (";" in first_line or "\t" in first_line):
                sep = "semicolons" if ";" in first_line else "tabs"
                yield Problem("wrong-delimiter", name, 1, None, f"the columns are separated by {sep}; SSDA903 "
                              "files are comma-separated: re-export as CSV (comma delimited); its rows were not "
                              "read")
                yield self._refuse_rest(name, lines)
                return
            if not first_line.strip():
                yield Problem("empty-file", name, None, None, "the file is empty; export the table again")
                return
            header = next(csv.reader([first_line]))
            table, detail = recognise(header)
            if table is None:
                yield Problem("unknown-table", name, 1, None, f"the header matches no SSDA903 table ({detail}); "
                              "check the export settings; its rows were not read")
                yield self._refuse_rest(name, lines)
                return
            columns = [c.strip().upper() for c in header]
            extra = unknown_columns(table, columns)
            for column in extra:
                yield Problem("unknown-column", name, 1, column, f"the {table} table has no such column; it was "
                              "ignored and the rest of the table read: remove it from the export, or ignore this")
            skip = ALLOWED_EXTRA - {"LA"} | set(extra)
            # Each column read, with the values its distinct cells cleaned to: an export repeats its codes, dates
            # and identifiers row after row, and each distinct cell is cleaned once.
            read_columns = [(i, column, {}) for i, column in enumerate(columns) if column not in skip]
            for item in source.csv_rows(lines, max_field=MAX_FIELD):
                self.position = source.position
                if isinstance(item, Problem | Refused):
                    yield item
                    continue
                number, row = item
                record = self._record(table, columns, read_columns, row, number, name)
                if isinstance(record, list):
                    yield from record
                    yield Refused(name, number)
                else:
                    yield record
            yield from source.take_problems()

    @staticmethod
    def _refuse_rest(name: str, lines) -> Refused:
        """The rows of a file not read, refused together: counted, so that none goes unaccounted."""
        return Refused(name, None, sum(1 for line in lines if line.strip()))

    def _record(self, table: str, columns: list[str], read_columns: list[tuple[int, str, dict[str, object]]],
                row: list[str], number: int, name: str) -> Record | list[Problem]:
        if len(row) != len(columns):
            return [Problem("row-length", name, number, None, f"the row has {len(row)} values for {len(columns)} "
                            "columns; check for an unquoted comma or a missing value")]
        problems: list[Problem] = []
        values: dict[str, object] = {}
        for i, column, cleaned in read_columns:
            cell = row[i]
            value = cleaned.get(cell, _NOT_SEEN)
            if value is _NOT_SEEN:
                value, problem = clean(column, cell, name, number)
                if problem:  # a problem names its row: never remembered
                    problems.append(problem)
                elif len(cell) <= _REMEMBERED_LENGTH and len(cleaned) < _REMEMBERED_PER_COLUMN:
                    cleaned[cell] = value
            values[column] = value
        if values.get("CHILD") is None and not any(p.field == "CHILD" for p in problems):
            problems.append(Problem("missing-value", name, number, "CHILD", "every row needs the child's id"))
        if problems:
            return problems
        return Record(table, number, values, name)
