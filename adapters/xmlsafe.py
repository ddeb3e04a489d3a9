"""Safe, streaming XML for every reader that takes XML exports.

Exports never carry a DOCTYPE, so a document with one (internal subset, entity declarations or an external
DTD) is refused before its first element is used. The parser itself tells: lxml reports the document's DOCTYPE
once it has read past it, whatever the encoding (UTF-16 too) or however much comes before it, so the check does
not depend on how the file looks as text. lxml runs with entity resolution, DTD loading and network access off
and without huge_tree, so nothing declared is ever expanded or fetched (XXE, billion laughs), and each element
is cleared once read, so memory stays bounded. A file that breaks off keeps everything read before the break.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from adapters.base import Problem

_CHUNK = 64 * 1024
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
        if _declares_a_doctype(fh):
            yield Problem("xml-doctype", name, None, None, "the file declares a DOCTYPE or entities, which exports "
                          "never do and which can be used to attack the reader; it was not read: export the file "
                          "again without a DOCTYPE")
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


def _declares_a_doctype(fh: BinaryIO) -> bool:
    """Whether the document declares a DOCTYPE (internal subset, entities or an external DTD), as the parser saw
    it: the prolog is parsed up to the root element's start tag, and nothing declared is resolved or fetched."""
    parser = etree.XMLPullParser(events=("start",), **PARSER_OPTIONS)
    while chunk := fh.read(_CHUNK):
        try:
            parser.feed(chunk)
        except etree.XMLSyntaxError:
            # An error after the root started (libxml2 stops entity amplification, for one) still leaves the
            # root's start event to read; one before it is reported with its line by the reading parse.
            chunk = b""
        for _, root in parser.read_events():
            info = root.getroottree().docinfo
            return bool(info.doctype) or info.internalDTD is not None or info.externalDTD is not None
        if not chunk:
            return False
    return False
