"""What kind of export a file is, from its first bytes (never its name alone), so that a file given to the
wrong command is a usage error naming the command that reads it, before anything is read or sent."""

from __future__ import annotations

import re
from pathlib import Path

_PEEK = 4096
WORKBOOK, OLD_EXCEL, SSDA903_XML, CIN_XML, OTHER_XML, TEXT = (
    "workbook", "old-excel", "ssda903-xml", "cin-xml", "xml", "text")

# What to say about each kind when a command does not read it.
_WHICH = {
    WORKBOOK: "an Excel workbook: an Annex A workbook is read by 'sgx adapt annex-a', a log by 'sgx adapt mapped "
              "--mapping ...'; SSDA903 tables must be exported as CSV (one file per table) for 'sgx adapt ssda903'",
    OLD_EXCEL: "an old Excel (.xls) file: save it as .xlsx (Annex A, logs) or export the tables as CSV (SSDA903)",
    SSDA903_XML: "an Expanded SSDA903 XML return: read it with 'sgx adapt ssda903-xml'",
    CIN_XML: "a CIN census XML file: read it with 'sgx adapt cin'",
    OTHER_XML: "an XML file this command does not read: 'sgx adapt ssda903-xml' reads the Expanded SSDA903 "
               "return and 'sgx adapt cin' the CIN census",
    TEXT: "a text (CSV) file: SSDA903 tables are read by 'sgx adapt ssda903', logs by 'sgx adapt mapped'; Annex A "
          "must be the workbook (.xlsx) as Ofsted sends it",
}


def kind_of(path: Path) -> str:
    """The kind of export in a file, from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(_PEEK)
    if head.startswith(b"PK\x03\x04"):
        return WORKBOOK
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return OLD_EXCEL
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        if re.search(rb"<(\w+:)?EXPSSDA903\b", head):
            return SSDA903_XML
        if re.search(rb"<(\w+:)?(Message|CINdetails|LAchildID|Children)\b", head):
            return CIN_XML
        return OTHER_XML
    return TEXT


def wrong_format(path: Path, accepted: frozenset[str], command: str) -> str | None:
    """None when `command` reads this file; otherwise the usage error to show, naming the command to use."""
    try:
        kind = kind_of(path)
    except OSError as exc:
        return f"{path.name}: cannot be read ({exc.strerror or exc}); check the path and its permissions"
    if kind in accepted:
        return None
    return f"{path.name} is {_WHICH[kind]}; 'sgx adapt {command}' does not read it, and nothing was read or sent"
