"""Reading XLSX workbooks safely and in bounded memory, for every reader that takes spreadsheets.

An XLSX file is a zip of XML parts. Before openpyxl sees it we check that it is a zip, that it is not a zip
bomb (total uncompressed size and compression ratio), and openpyxl parses its XML through defusedxml (it
uses defusedxml whenever it is installed, and it is a pinned dependency). Workbooks are opened read-only so
rows stream. Formulas are never evaluated: a formula cell is a problem naming the cell, because its value
is whatever the spreadsheet last computed, which may be stale or absent.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter

from adapters.base import Problem, Refused

MAX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_RATIO = 200
ERROR_VALUES = frozenset({"#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!"})


@dataclass(frozen=True)
class Cell:
    """One cell as readers want it: text or a date, with its spreadsheet address for problems."""

    column: str
    address: str
    value: str | date | None


def open_workbook(path: Path) -> tuple[openpyxl.Workbook | None, list[Problem]]:
    """The workbook, or None with the reason it was not opened."""
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return None, [Problem("not-xlsx", name, None, None, "the file is not an XLSX workbook (not a zip archive); "
                              "save it from the spreadsheet as Excel Workbook (.xlsx)")]
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if total > MAX_UNCOMPRESSED or total / packed > MAX_RATIO:
        return None, [Problem("xlsx-too-large", name, None, None,
                              f"the workbook expands to {total // (1024 * 1024)} MB ({total / packed:.0f}x its size), "
                              "beyond what a genuine export needs; it was not read: export it again or split it")]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and data validation it ignores
            return openpyxl.load_workbook(path, read_only=True, data_only=False), []
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a damaged workbook
        return None, [Problem("xlsx-damaged", name, None, None,
                              f"the workbook could not be opened ({type(exc).__name__}); open it in the spreadsheet "
                              "program, save it again as .xlsx and retry")]


@contextmanager
def opened(path: Path) -> Iterator[tuple[openpyxl.Workbook | None, list[Problem]]]:
    """`with opened(path) as (workbook, problems):` the workbook (None if it was not opened) is closed after."""
    workbook, problems = open_workbook(path)
    try:
        yield workbook, problems
    finally:
        if workbook is not None:
            workbook.close()


def _text(value: object) -> str | date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).replace("\xa0", " ").strip()
    # Exports fill empty cells with placeholders; they mean blank.
    return None if not text or text.strip("-. ") == "" or text.lower() in {"n/a", "nan", "null"} else text


def sheet_header(sheet) -> list[str]:
    """The headings of a sheet's first row ("" where a cell holds no text)."""
    for cells in sheet.iter_rows(max_row=1):
        return [text if isinstance(text := _text(c.value), str) else "" for c in cells]
    return []


def sheet_rows(sheet, file: str, used: Iterable[str], *,
               refusals: bool = False) -> Iterator[tuple[int, dict[str, Cell]] | Problem | Refused]:
    """Each data row of a sheet as heading -> Cell, after the first row (the headings). A formula or a
    spreadsheet error is a problem naming the cell; a row with one in a `used` column is not used (its value
    cannot be trusted; with `refusals`, a Refused says so), and elsewhere the cell is left empty."""
    header = sheet_header(sheet)
    used = set(used)
    for number, cells in enumerate(sheet.iter_rows(min_row=2), start=2):
        out: dict[str, Cell] = {}
        unusable = False
        for index, cell in enumerate(cells):
            if index >= len(header) or not header[index]:
                continue
            heading, address, raw = header[index], f"{get_column_letter(index + 1)}{number}", cell.value
            value = _text(raw)
            if getattr(cell, "data_type", None) == "f" or (isinstance(raw, str) and raw.startswith("=")):
                yield Problem("formula-cell", file, number, heading, f"cell {address} holds a formula, whose result "
                              "the exchange cannot trust; paste the values (not formulas) into the export")
            elif isinstance(value, str) and value.upper() in ERROR_VALUES:
                yield Problem("error-cell", file, number, heading,
                              f"cell {address} holds a spreadsheet error; correct or clear it")
            else:
                out[heading] = Cell(heading, address, value)
                continue
            unusable |= heading in used
            out[heading] = Cell(heading, address, None)
        if unusable:
            if refusals:
                yield Refused(file, number)
        elif any(c.value is not None for c in out.values()):
            yield number, out


def where(file: str, sheet: str) -> str:
    return f"{file} [{sheet}]"
