"""Read the Expanded SSDA903 XML return as the same Header and Episodes records as the CSV tables.

Quirks kept here: CHILDID is the CSV's CHILD and PL its PLACE; empty values are self-closing tags; the file
carries no LA code (the caller says which authority it is from). Parsing is safe (adapters/xmlsafe.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from adapters.base import Problem, Reader, Record, Refused, numbered
from adapters.ssda903_csv.reader import TABLES, clean
from adapters.xmlsafe import elements

_RENAME = {"CHILDID": "CHILD", "PL": "PLACE"}


class Ssda903XmlReader(Reader):
    name = "ssda903-xml"

    def _moved(self, position: int) -> None:
        self.position = position

    def read(self, path: Path) -> Iterator[Record | Problem | Refused]:
        return numbered(self._read(path))

    def _read(self, path: Path) -> Iterator[Record | Problem | Refused]:
        name = path.name
        child_id = None
        for element in elements(path, ("HEADER", "EPISODE"), self._moved):
            if isinstance(element, Problem):
                yield element
                continue
            line = element.sourceline
            table = "header" if element.tag == "HEADER" else "episodes"
            values, problems = {}, []
            fields = {_RENAME.get(child.tag, child.tag): child.text or "" for child in element
                      if isinstance(child.tag, str)}
            if table == "episodes":
                fields["CHILD"] = child_id or ""
            for column in TABLES[table]:
                values[column], problem = clean(column, fields.get(column, ""), name, line)
                if problem:
                    problems.append(problem)
            if table == "header":
                child_id = values.get("CHILD")
            if values.get("CHILD") is None:
                problems.append(Problem("missing-value", name, line, "CHILDID", "every child needs its id"))
            if problems:
                yield from problems
                yield Refused(name, line or 0)
            else:
                yield Record(table, line or 0, values, name)
