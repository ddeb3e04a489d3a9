"""Read Ofsted's provider lists: each registered setting with its URN, name, type, local authority and
postcode, for the directory's settings.

Quirks kept here: Ofsted changed the layout over the years (older "Provider information" sheets with
"Setting Name" and "Setting Address Postcode"; the 2025 combined list with "Providers" and "SA Providers"
sheets, where supported accommodation names a "Setting Local Authority" apart from the provider's);
header case varies; the "Registration Conditions" sheet repeats settings and is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from adapters.authorities import Authorities, normalise_postcode
from adapters.base import Problem, Reader, Record
from adapters.xlsx import opened, sheet_header, sheet_rows, where
from standard.catalogue import OFSTED_URN_FORM

URN = re.compile(OFSTED_URN_FORM)
# Our field <- the headers Ofsted has used for it, most specific first.
COLUMNS: dict[str, tuple[str, ...]] = {
    "URN": ("urn",),
    "NAME": ("setting name", "provider name"),
    "LA": ("setting local authority", "local authority"),
    "TYPE": ("provider type",),
    "SUBTYPE": ("provider subtype",),
    "STATUS": ("setting status", "provider status", "registration status"),
    "CLOSED": ("closed date", "deregistration date"),
    "POSTCODE": ("setting address postcode", "provider postcode"),
    "PLACEMENT_CODE": ("provider placement code", "placement code"),
}
CLOSED_STATUSES = frozenset({"closed", "resigned", "cancelled", "deregistered", "suspended"})


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

    def __init__(self, authorities: Authorities | None = None):
        self.authorities = authorities or Authorities()

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
            status = str(values.get("STATUS") or "").lower()
            if values.get("CLOSED") or status in CLOSED_STATUSES:
                continue
            yield self._record(values, number, file, sheet.title)

    @staticmethod
    def _columns(headers) -> dict[str, str]:
        by_lower = {h.lower().strip(): h for h in headers}
        found = {}
        for ours, candidates in COLUMNS.items():
            for candidate in candidates:
                if candidate in by_lower:
                    found[ours] = by_lower[candidate]
                    break
        return found

    def _record(self, values: dict, number: int, file: str, sheet: str) -> Record | Problem:
        urn = str(values.get("URN") or "").upper()
        if not URN.fullmatch(urn):
            return Problem("bad-urn", file, number, "URN", "an Ofsted URN is SC followed by 6 digits, or 7 digits; "
                           "check the row against Ofsted's published list")
        authority = self.authorities.find(values.get("LA"))
        if authority is None or authority.participant is None:
            return Problem("unknown-la", file, number, "Local authority", "the local authority is not an English "
                           "authority the exchange knows by name or code; correct the name or add the setting "
                           "with 'sgx directory add-setting'")
        if not values.get("NAME"):
            return Problem("missing-value", file, number, "Setting name", "every setting needs its name")
        return Record("setting", number, {
            "URN": urn, "NAME": str(values["NAME"]), "TYPE": setting_type(values.get("TYPE"), sheet),
            "HOST_LA": authority.participant, "POSTCODE": normalise_postcode(values.get("POSTCODE")),
        })
