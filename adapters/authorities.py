"""Which English local authority a cell names: a DfE code (886), an ONS GSS code (E10000016) or a name as
exports write it ("Kent", "Bristol, City of", "KENT COUNTY COUNCIL"). Also the special values DfE uses for
placements outside England and for confidential placements."""

from __future__ import annotations

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
        self.by_name: dict[str, str] = {}
        for concept in terminology.code_systems()["dfe-la"].concepts:
            props = dict(concept.properties)
            self.by_code[concept.code] = concept.code
            if props.get("gss"):
                self.by_code.setdefault(props["gss"].upper(), concept.code)
            if props.get("status") == "live" or _name_key(concept.display) not in self.by_name:
                self.by_name[_name_key(concept.display)] = concept.code

    def find(self, text: str | None) -> Authority | None:
        """The authority a cell names, or None when it names none we know."""
        if not text:
            return None
        value = str(text).strip()
        upper = value.upper()
        if upper in OUTSIDE_ENGLAND or upper == CONFIDENTIAL:
            return Authority(special=upper)
        code = self.by_code.get(upper) or self.by_name.get(_name_key(value))
        return Authority(dfe_code=code) if code else None


def normalise_postcode(text: str | None) -> str | None:
    """`bn20 8jx` -> `BN20 8JX`; None unless it has the shape of a full UK postcode."""
    compact = re.sub(r"\s+", "", (text or "").upper())
    if not re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}", compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"
