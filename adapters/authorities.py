"""Which English local authority a cell names: a DfE code (886), an ONS GSS code (E10000016), a name as
exports write it ("Kent", "Bristol, City of", "KENT COUNTY COUNCIL"), or a district within it ("East Lindsey"
or E07000137 for Lincolnshire). Also the special values DfE uses for
placements outside England and for confidential placements."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from standard import terminology

CONFIDENTIAL = "CON"
OUTSIDE_ENGLAND = {"WAL": "Wales", "SCO": "Scotland", "NIR": "Northern Ireland", "NUK": "outside the UK"}
_NOISE = frozenset({"city", "of", "county", "council", "the", "borough", "london", "royal", "metropolitan",
                    "district", "cc", "mbc", "lbc", "lb", "bc", "and"})


def _name_key(text: str) -> str:
    words = re.sub(r"[^a-z0-9 ]", " ", text.lower().replace("&", " and ")).split()
    kept = [w for w in words if w not in _NOISE]
    return " ".join(kept)


@dataclass(frozen=True)
class Authority:
    """What a cell says about a local authority: a DfE code, or a special value, or nothing known."""

    dfe_code: str | None = None
    special: str | None = None  # CON, WAL, SCO, NIR, NUK

    @property
    def confidential(self) -> bool:
        return self.special == CONFIDENTIAL

    @property
    def participant(self) -> str | None:
        return f"la-{self.dfe_code}" if self.dfe_code else None


class Authorities:
    """Look up local authorities by code or name; built once from the standard's DfE LA code system."""

    def __init__(self) -> None:
        self.by_code: dict[str, str] = {}
        self.by_name: dict[str, str] = {}  # exact names, lower case
        self.by_key: dict[str, str] = {}  # names without the words that vary ("council", "city of", ...)

        def name(text: str, code: str, *, prefer: bool) -> None:
            for table, key in ((self.by_name, text.strip().lower()), (self.by_key, _name_key(text))):
                if key and (prefer or key not in table):
                    table[key] = code

        # District councils (LADs) first, so that an upper-tier authority of the same name wins below.
        with open(terminology.SOURCE / "reference" / "lad_to_la_england.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["dfe_la_code"]:
                    self.by_code[row["lad_code"].upper()] = row["dfe_la_code"]
                    name(row["lad_name"], row["dfe_la_code"], prefer=True)
        for concept in terminology.code_systems()["dfe-la"].concepts:
            props = dict(concept.properties)
            live = props.get("status") == "live"
            self.by_code[concept.code] = concept.code
            if props.get("gss") and (live or props["gss"].upper() not in self.by_code):
                self.by_code[props["gss"].upper()] = concept.code
            name(concept.display, concept.code, prefer=live)

    def find(self, text: str | None) -> Authority | None:
        """The authority a cell names, or None when it names none we know."""
        if not text:
            return None
        value = str(text).strip()
        upper = value.upper()
        if upper in OUTSIDE_ENGLAND or upper == CONFIDENTIAL:
            return Authority(special=upper)
        code = self.by_code.get(upper) or self.by_name.get(value.lower()) or self.by_key.get(_name_key(value))
        return Authority(dfe_code=code) if code else None


def normalise_postcode(text: str | None) -> str | None:
    """`bn20 8jx` -> `BN20 8JX`; None unless it has the shape of a full UK postcode."""
    compact = re.sub(r"\s+", "", (text or "").upper())
    if not re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}", compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"
