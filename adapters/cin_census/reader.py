"""Read the CIN census XML (2017 to 2026 schemas) for the signals the exchange carries: Section 47 enquiries
and child protection plans about children this authority has placed in another area.

Quirks kept here: the child's sex is GenderCurrent (1, 2, 0, 9) up to 2024 and Sex (M, F, U) from 2025,
and some files mix the two or put 1/2 in Sex; yes/no flags come as true/false or 1/0; dates are yyyy-mm-dd;
the header's LEA says which authority made the file. Parsing is safe (adapters/xmlsafe.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import orjson

from adapters.base import Problem, Reader, Record, message_id_for
from adapters.placements import ChangeStore, Plan, Planned
from adapters.xmlsafe import elements, local
from broker.directory import Directory
from standard import compose as c

_SEX = {"1": "M", "2": "F", "0": "U", "9": "U", "M": "M", "F": "F", "U": "U"}
_GENDER = {"M": "male", "F": "female", "U": "unknown"}


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

    def read(self, path: Path) -> Iterator[Record | Problem]:
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
        child = self._text(element, "LAchildID")
        if child is None:
            yield Problem("missing-value", name, line, "LAchildID", "every child needs its LA child id; the child "
                          "was skipped")
            return
        for node in element.iter():
            if node is not element and (node.tail or "").strip():
                yield Problem("stray-text", name, node.sourceline, local(node.tag), "text sits outside any element "
                              "after this one; remove it from the export")
        values: dict[str, object] = {"CHILD": child}
        birth = self._text(element, "PersonBirthDate")
        values["DOB"] = _date(birth)
        if birth and values["DOB"] is None:
            yield Problem("bad-date", name, line, "PersonBirthDate", "not a date in yyyy-mm-dd form; correct it "
                          "in the case management system")
        sex = self._text(element, "Sex") or self._text(element, "GenderCurrent")
        values["SEX"] = _SEX.get((sex or "").upper())
        if sex and values["SEX"] is None:
            yield Problem("bad-code", name, line, "Sex", "Sex must be M, F or U (GenderCurrent 1, 2, 0 or 9 before "
                          "2025); correct it in the case management system")
        yield Record("child", line, values, name)
        for node in element.iter():
            tag = local(node.tag)
            if tag == "S47ActualStartDate":
                kind, when = "s47", node
            elif tag == "CPPstartDate":
                kind, when = "cpp", node
            else:
                continue
            started = _date(when.text)
            if started is None:
                yield Problem("bad-date", name, node.sourceline, tag, "not a date in yyyy-mm-dd form; the record "
                              "was skipped: correct it in the case management system")
                continue
            record = {"CHILD": child, "DATE": started}
            if kind == "cpp":
                parent = node.getparent()
                record["CATEGORY"] = self._text(parent, "InitialCategoryOfAbuse") if parent is not None else None
            yield Record(kind, node.sourceline or 0, record, name)


def plan_concerns(la_code: str, records: dict[str, list[Record]], directory: Directory,
                  store: ChangeStore) -> Plan:
    """A concern notification for each new Section 47 enquiry or child protection plan about a child placed
    (by this authority, as told to the exchange) at a setting in another area on that day."""
    sender = f"la-{la_code}"
    plan = Plan()
    for source in records.get("source", []):
        if source.values.get("LEA") and source.values["LEA"] != la_code:
            plan.problems.append(Problem("wrong-authority", source.file, source.row, "LEA", f"the file is from LA "
                                         f"{source.values['LEA']}, not {la_code}; nothing in it was sent: run it "
                                         "with that authority's --la"))
            return plan
    children = {r.values["CHILD"]: r.values for r in records.get("child", [])}
    for kind, concern_type in (("s47", "section-47-enquiry"), ("cpp", "child-protection-plan")):
        for r in records.get(kind, []):
            v = r.values
            urn = store.setting_of(v["CHILD"], v["DATE"])
            setting = directory.setting(urn) if urn else None
            if setting is None or setting.host_la == sender:
                plan.out_of_scope += 1
                continue
            child = children.get(v["CHILD"], {})
            if child.get("DOB") is None:
                plan.problems.append(Problem("missing-value", r.file, r.row, "PersonBirthDate",
                                             "the child's date of birth is needed to notify; record it"))
                continue
            key = f"cin|{kind}|{v['CHILD']}|{v['DATE']}"
            digest = hashlib.sha256(orjson.dumps([str(x) for x in (v["DATE"], urn, v.get("CATEGORY"))])).hexdigest()
            if store.digest_of(key) == digest:
                plan.unchanged += 1
                continue
            b = c.MessageBuilder("concern-notification", sender, message_id=message_id_for(sender, key, digest))
            child_ref = b.add(c.child(v["CHILD"], la_code, child["DOB"].isoformat(),
                                      _GENDER.get(child.get("SEX") or "U", "unknown")))
            setting_ref = b.add(c.setting(setting.urn, setting.name))
            b.add(c.concern(concern_type, setting_ref, sender, c.timestamp(), child_ref=child_ref), focus=True)
            plan.messages.append(Planned(key, digest, b.build(), file=r.file, row=r.row))
    return plan
