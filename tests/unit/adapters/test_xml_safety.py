"""XML inputs: a DOCTYPE is refused by what the parser read, not by how the file's first bytes look."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import Problem
from adapters.xmlsafe import elements

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "xml"
HIDDEN = ["doctype_after_padding.xml", "doctype_utf16.xml", "external_dtd_padded.xml"]


def _peek_only_refuses(path: Path) -> bool:
    """The broken twin: the old check, which looked for a DOCTYPE in the first 4 KB as text."""
    head = path.read_bytes()[:4096].upper()
    return b"<!DOCTYPE" in head or b"<!ENTITY" in head


def _read(path: Path) -> tuple[list, list[str]]:
    items = list(elements(path, ("HEADER",)))
    return [i for i in items if not isinstance(i, Problem)], [i.code for i in items if isinstance(i, Problem)]


@pytest.mark.parametrize("name", HIDDEN)
def test_a_hidden_doctype_is_refused_before_any_element_is_used(name):
    records, codes = _read(CORPUS / name)
    assert codes == ["xml-doctype"]
    assert records == []


@pytest.mark.parametrize("name", HIDDEN)
def test_the_text_peek_twin_misses_each_hidden_doctype(name):
    # Shows the corpus can catch a check that looks at the text rather than the parse.
    assert not _peek_only_refuses(CORPUS / name)


def test_the_same_document_without_a_doctype_is_read_in_utf16():
    # Elements are cleared once the reader moves on, so read each while it is current.
    seen = [i.findtext("CHILDID") if not isinstance(i, Problem) else i.code
            for i in elements(CORPUS / "no_doctype_utf16.xml", ("HEADER",))]
    assert seen == ["X1"]
