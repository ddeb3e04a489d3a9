"""Small XLSX workbooks written by the tests (openpyxl writes real Office Open XML files)."""

from __future__ import annotations

from pathlib import Path

import openpyxl

LIST_8_HEADINGS = ["Child Unique ID", "Gender", "Ethnicity", "Date of Birth", "Child's Legal Status",
                   "Start Date of Most Recent Placement", "Placement Type", "Placement Provider", "Placement postcode",
                   "URN of Placement", "Placement Location", "LA of Placement", "Date Ceased to be Looked After",
                   "Reason Ceased to be Looked After"]


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def list_8_row(child="A1", *, urn=None, postcode=None, la=None, place="f) K2: Children's home",
               start="01/02/2026", dob="27/03/2011", ceased=None, reason=None) -> list[object]:
    return [child, "b) Female", "a) WBRI", dob, "C2: FCO", start, place, "e) PR4 - Private provision", postcode,
            urn, "Town", la, ceased, reason]


def annex_a(path: Path, *rows: list[object]) -> Path:
    return workbook(path, {"List 1": [["Child Unique ID"]], "List 8": [LIST_8_HEADINGS, *rows]})
