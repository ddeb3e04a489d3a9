"""Read a CSV or XLSX log through a mapping: each row becomes one `row` record of message fields."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from adapters.base import Problem, Reader, Record, Refused
from adapters.mapped.mapping import CODED, DATE_FIELDS, SEX, Mapping
from adapters.text import FORMULA_ADVICE, TextSource, formula_like
from adapters.xlsx import opened, sheet_header, sheet_rows, where
from standard import terminology as term

MAX_FIELD = 100_000  # logs carry free-text summaries


class MappedReader(Reader):
    name = "mapped"

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.valid = {f: term.code_systems()[s].codes for f, s in CODED.items()}

    def read(self, path: Path) -> Iterator[Record | Problem]:
        if path.suffix.lower() in {".xlsx", ".xlsm"}:
            yield from self._xlsx(path)
        else:
            yield from self._csv(path)

    def _csv(self, path: Path) -> Iterator[Record | Problem]:
        name = path.name
        with TextSource(path) as source:
            lines = source.lines()
            first = next(lines, "")
            yield from source.take_problems()
            if not first.strip():
                yield Problem("empty-file", name, None, None, "the file has no heading row; export it again")
                return
            header = [h.strip() for h in next(csv.reader([first], delimiter=self.mapping.delimiter))]
            if not self._headings_present(header):
                yield from self._missing_headings(header, name)
                return
            for item in source.csv_rows(lines, delimiter=self.mapping.delimiter, max_field=MAX_FIELD):
                self.position = source.position
                if isinstance(item, Problem | Refused):
                    yield item
                    continue
                number, row = item
                if len(row) != len(header):
                    yield Problem("row-length", name, number, None, f"the row has {len(row)} values for "
                                  f"{len(header)} columns; check for an unquoted delimiter or a missing value")
                    yield Refused(name, number)
                    continue
                yield from self._record(dict(zip(header, row, strict=True)), name, number)

    def _xlsx(self, path: Path) -> Iterator[Record | Problem]:
        with opened(path) as (workbook, problems):
            yield from problems
            if workbook is None:
                return
            wanted = self.mapping.sheet
            sheet = workbook[wanted] if wanted and wanted in workbook.sheetnames else None
            if wanted and sheet is None:
                yield Problem("missing-sheet", path.name, None, None, f"the workbook has no sheet '{wanted}' "
                              "that the mapping names; fix the mapping's [source] sheet")
                return
            sheet = sheet or workbook.worksheets[0]
            file = where(path.name, sheet.title)
            headings = sheet_header(sheet)
            if not self._headings_present(headings):
                yield from self._missing_headings(headings, file)
                return
            for item in sheet_rows(sheet, file, used=self.mapping.columns.values(), refusals=True):
                if isinstance(item, Problem | Refused):
                    yield item
                    continue
                number, cells = item
                yield from self._record({h: cell.value for h, cell in cells.items()}, file, number)

    def _headings_present(self, header: list[str]) -> bool:
        return all(h in header for h in self.mapping.columns.values())

    def _missing_headings(self, header: list[str], file: str) -> Iterator[Problem]:
        for fld, heading in self.mapping.columns.items():
            if heading not in header:
                yield Problem("missing-column", file, 1, heading, f"the mapping reads {fld} from this column, "
                              f"which the file does not have; fix the heading or {self.mapping.path}")

    def _record(self, raw: dict[str, object], file: str, number: int) -> Iterator[Record | Problem]:
        values: dict[str, object] = dict(self.mapping.fixed)
        problems: list[Problem] = []
        for fld, heading in self.mapping.columns.items():
            value = raw.get(heading)
            if isinstance(value, str):
                value = value.strip() or None
            if value is None:
                values[fld] = values.get(fld)
                continue
            cleaned, problem = self._clean(fld, value, file, number, heading)
            values[fld] = cleaned
            if problem:
                problems.append(problem)
        for fld in self.mapping.required:
            if values.get(fld) is None and not any(p.field == self.mapping.columns.get(fld) for p in problems):
                problems.append(Problem("missing-value", file, number, self.mapping.columns.get(fld, fld),
                                        f"{self.mapping.event} needs {fld}; record it in the log"))
        if problems:
            yield from problems
            yield Refused(file, number)
        else:
            yield Record("row", number, values, file)

    def _clean(self, fld: str, value: object, file: str, number: int, heading: str) -> tuple[object, Problem | None]:
        if fld in DATE_FIELDS:
            if isinstance(value, datetime):
                return value.date(), None
            if isinstance(value, date):
                return value, None
            for fmt in self.mapping.date_formats:
                try:
                    return datetime.strptime(str(value), fmt).date(), None
                except ValueError:
                    continue
            return None, Problem("bad-date", file, number, heading, "not a date in the form the mapping gives "
                                 f"({' or '.join(self.mapping.date_formats)}); correct it in the log")
        text = str(value)
        if isinstance(value, str) and fld not in CODED and fld != "child_sex" and formula_like(text):
            # Free text and identifiers (codes are checked against their lists below, dates parsed above).
            return None, Problem("formula-text", file, number, heading, FORMULA_ADVICE)
        table = self.mapping.codes.get(fld)
        if table is not None:
            text = table.get(text, table.get(text.lower(), text))
        if fld in CODED and text not in self.valid[fld]:
            return None, Problem("bad-code", file, number, heading, f"the value is not one the mapping translates "
                                 f"to a {CODED[fld]} code; add it under [codes.{fld}] in {self.mapping.path}")
        if fld == "child_sex":
            sex = SEX.get(text.upper())
            if sex is None:
                return None, Problem("bad-code", file, number, heading, "sex must be M, F or U (or mapped to them "
                                     "under [codes.child_sex])")
            return sex, None
        if fld == "setting_urn":
            return text.upper(), None
        return text, None
