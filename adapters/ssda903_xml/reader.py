"""Read the Expanded SSDA903 XML return as the same Header and Episodes records as the CSV tables.

Quirks kept here: CHILDID is the CSV's CHILD and PL its PLACE; empty values are self-closing tags; the file
carries no LA code (the caller says which authority it is from). Parsing is safe: any DOCTYPE is refused
(exports never have one), and lxml runs with entity resolution, DTD loading and network access off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from adapters.base import Problem, Reader, Record
from adapters.ssda903_csv.reader import TABLES, clean

_RENAME = {"CHILDID": "CHILD", "PL": "PLACE"}
_PEEK = 4096


class Ssda903XmlReader(Reader):
    name = "ssda903-xml"

    def read(self, path: Path) -> Iterator[Record | Problem]:
        name = path.name
        with open(path, "rb") as fh:
            head = fh.read(_PEEK)
        if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
            yield Problem("xml-doctype", name, None, None, "the file declares a DOCTYPE or entities, which exports "
                          "never do and which can be used to attack the reader; it was not read")
            return
        parser_options = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False,
                          "remove_comments": True}
        child_id = None
        try:
            for _, element in etree.iterparse(str(path), events=("end",), tag=("HEADER", "EPISODE"),
                                              **parser_options):
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
                else:
                    yield Record(table, line or 0, values)
                if element.tag == "EPISODE" or element.getparent() is None:
                    element.clear(keep_tail=True)
        except etree.XMLSyntaxError as exc:
            yield Problem("xml-malformed", name, exc.lineno, None, f"the XML is not well formed ({exc.msg}); the "
                          "records before this point were read; export the file again")
