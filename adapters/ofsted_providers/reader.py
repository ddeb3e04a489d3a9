"""Read Ofsted's provider lists: each registered setting with its URN, name, type, local authority and
postcode, for the directory's settings.

Quirks kept here: Ofsted changed the layout over the years (older "Provider information" sheets with
"Setting Name" and "Setting Address Postcode"; the 2025 combined list with "Providers" and "SA Providers"
sheets, where supported accommodation names a "Setting Local Authority" apart from the provider's);
header case and spacing vary; the "Registration Conditions" sheet repeats settings and is skipped.

A setting is left out as closed only on evidence: a closed status, or a closing date that is a real date on
or before today. A closing date of "na", "n/a", "-" or blank means open, and one that is text we cannot read
keeps the setting (with a problem to check it): a setting missing from the directory would leave its
children's placements unlocated, which is worse than one kept a little too long.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from adapters.authorities import Authorities, normalise_postcode
from adapters.base import Problem, Reader, Record
from adapters.xlsx import opened, sheet_header, sheet_rows, where
from standard.catalogue import OFSTED_URN_FORM

URN = re.compile(OFSTED_URN_FORM)
# Our field <- the headers Ofsted has used for it, most specific first.
COLUMNS: dict[str, tuple[str, ...]] = {
    "URN": ("urn", "setting urn", "provider urn"),
    "NAME": ("setting name", "provider name", "setting"),
    "LA": ("setting local authority", "local authority", "setting la", "la"),
    "TYPE": ("provider type", "provision type", "setting type", "type of provision"),
    "SUBTYPE": ("provider subtype", "provision subtype"),
    "STATUS": ("setting status", "provider status", "registration status"),
    "CLOSED": ("closed date", "closure date", "setting closed date", "deregistration date", "date closed"),
    "POSTCODE": ("setting address postcode", "setting postcode", "setting address post code", "postcode",
                 "provider postcode", "provider address postcode"),
    "PLACEMENT_CODE": ("provider placement code", "placement code"),
}
CLOSED_STATUSES = frozenset({"closed", "resigned", "cancelled", "deregistered", "suspended"})
# What a closing-date cell holds for a setting that is open.
OPEN_MARKERS = frozenset({"", "na", "n/a", "n.a.", "-", "none", "not applicable", "open"})
_DATE_FORMS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y")


def setting_type(provider_type: str | None, sheet: str) -> str:
    text = (provider_type or "").lower().replace("'", "")
    if sheet.lower().startswith("sa ") or "supported accommodation" in text:
        return "supported-accommodation"
    if "secure" in text:
        return "secure-childrens-home"
    if "residential special school" in text:
        return "residential-special-school"
    if "holiday" in text:
        return "residential-holiday-scheme"
    if "childrens home" in text or "children home" in text:
        return "childrens-home"
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "other"


class ProviderListReader(Reader):
    """Yields one `setting` record per open setting: URN, NAME, TYPE, HOST_LA (participant id), POSTCODE."""

    name = "ofsted-providers"

    def __init__(self, authorities: Authorities | None = None, *, today: date | None = None):
        self.authorities = authorities or Authorities()
        self.today = today or date.today()

    def read(self, path: Path) -> Iterator[Record | Problem]:
        with opened(path) as (workbook, problems):
            yield from problems
            for sheet in workbook.worksheets if workbook is not None else []:
                if "condition" not in sheet.title.lower():
                    yield from self._sheet(sheet, where(path.name, sheet.title))

    def _sheet(self, sheet, file: str) -> Iterator[Record | Problem]:
        columns = self._columns(h for h in sheet_header(sheet) if h)
        if "URN" not in columns or "LA" not in columns:
            yield Problem("unknown-sheet", file, 1, None, "the sheet has no URN or local authority column; it is "
                          "not a provider list and was skipped")
            return
        for item in sheet_rows(sheet, file, used=columns.values()):
            if isinstance(item, Problem):
                yield item
                continue
            number, cells = item
            values = {ours: cells[theirs].value if theirs in cells else None for ours, theirs in columns.items()}
            closed, problem = self._closed(values, number, file, columns.get("CLOSED"))
            if problem is not None:
                yield problem
            if closed:
                continue
            yield from self._record(values, number, file, sheet.title, columns)

    def _closed(self, values: dict, number: int, file: str, heading: str | None) -> tuple[bool, Problem | None]:
        """Whether the row is a closed setting, and a problem when its closing date cannot be read."""
        if str(values.get("STATUS") or "").strip().lower() in CLOSED_STATUSES:
            return True, None
        closed = values.get("CLOSED")
        if isinstance(closed, date):
            return closed <= self.today, None
        text = str(closed or "").strip().lower()
        if text in OPEN_MARKERS:
            return False, None
        for form in _DATE_FORMS:
            with contextlib.suppress(ValueError):
                return datetime.strptime(text, form).date() <= self.today, None
        return False, Problem("bad-closed-date", file, number, heading, "the closing date is not a date; the "
                              "setting was kept as open: check it against Ofsted's published list")

    @staticmethod
    def _columns(headers) -> dict[str, str]:
        # Headings vary in case and spacing across the published layouts ("Setting  Name", "Post code").
        by_lower = {" ".join(h.lower().split()): h for h in headers}
        found = {}
        for ours, candidates in COLUMNS.items():
            for candidate in candidates:
                if candidate in by_lower:
                    found[ours] = by_lower[candidate]
                    break
        return found

    def _record(self, values: dict, number: int, file: str, sheet: str, columns: dict[str, str],
                ) -> Iterator[Record | Problem]:
        """The setting, or every problem of the row (each names its column as the sheet heads it)."""
        problems = []
        urn = str(values.get("URN") or "").upper()
        if not URN.fullmatch(urn):
            problems.append(Problem("bad-urn", file, number, columns["URN"], "an Ofsted URN is SC followed by 6 "
                                    "digits, or 7 digits; check the row against Ofsted's published list"))
        authority = self.authorities.find(values.get("LA"))
        if authority is None or authority.participant is None:
            problems.append(Problem("unknown-la", file, number, columns["LA"], "the local authority is not an "
                                    "English authority the exchange knows by name or code; correct the name or add "
                                    "the setting with 'sgx directory add-setting'"))
        if not values.get("NAME"):
            problems.append(Problem("missing-value", file, number, columns.get("NAME", "Setting name"),
                                    "every setting needs its name"))
        if problems:
            yield from problems
            return
        yield Record("setting", number, {
            "URN": urn, "NAME": str(values["NAME"]), "TYPE": setting_type(values.get("TYPE"), sheet),
            "HOST_LA": authority.participant, "POSTCODE": normalise_postcode(values.get("POSTCODE")),
        })
