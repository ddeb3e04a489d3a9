"""Safe, streaming XML for every reader that takes XML exports.

Exports never carry a DOCTYPE, so any DOCTYPE or entity declaration is refused before parsing (this stops
XXE and billion-laughs at the door). lxml then runs with entity resolution, DTD loading and network access
off and without huge_tree, and each element is cleared once read, so memory stays bounded. A file that
breaks off keeps everything read before the break.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from lxml import etree

from adapters.base import Problem

_PEEK = 4096
PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False,
                  "remove_comments": True, "remove_pis": True}


def local(tag: object) -> str:
    """An element's name without its namespace (CIN files come with and without one)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def elements(path: Path, tags: tuple[str, ...], on_position: Callable[[int], None] = lambda _: None,
             ) -> Iterator[etree._Element | Problem]:
    """Yield each complete element named in `tags` (local names), then clear it; or problems."""
    name = path.name
    with open(path, "rb") as fh:
        head = fh.read(_PEEK).upper()
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            yield Problem("xml-doctype", name, None, None, "the file declares a DOCTYPE or entities, which exports "
                          "never do and which can be used to attack the reader; it was not read")
            return
        fh.seek(0)
        wanted = set(tags)
        try:
            for _, element in etree.iterparse(fh, events=("end",), **PARSER_OPTIONS):
                if local(element.tag) not in wanted:
                    continue
                on_position(fh.tell())
                yield element
                element.clear(keep_tail=True)
        except etree.XMLSyntaxError as exc:
            yield Problem("xml-malformed", name, exc.lineno, None, f"the XML is not well formed ({exc.msg}); the "
                          "records before this point were read; export the file again")
