"""Text exports read as a stream of lines, whatever their encoding, in bounded memory.

Local authority exports come as UTF-8 (with or without a BOM), Windows-1252 (Excel's "CSV" on Windows) or
now and then UTF-16. Lines are read as bytes and decoded one at a time, so a 200 MB file takes no more
memory than a small one, and a line that is not UTF-8 is read as Windows-1252 and reported once with its
line number. A line longer than MAX_LINE is skipped whole and replaced by the OVERLONG marker, so a
corrupt file with no line breaks cannot exhaust memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from adapters.base import Problem, Refused

MAX_LINE = 1_000_000
OVERLONG = "\x00line-too-long"


class TextSource:
    """Open with `with TextSource(path) as source:`; iterate `source.lines()`; collect `take_problems()`."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self._problems: list[Problem] = []
        self._warned_encoding = False
        self.line = 0

    def __enter__(self) -> TextSource:
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__
        return self

    def __exit__(self, *exc) -> None:
        self._raw.close()

    @property
    def position(self) -> int:
        """Bytes read so far (for progress bars)."""
        return self._raw.tell()

    def take_problems(self) -> list[Problem]:
        out, self._problems = self._problems, []
        return out

    def lines(self) -> Iterator[str]:
        head = self._raw.peek(4)[:4]
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            self._problems.append(Problem("encoding-utf16", self.name, None, None,
                                          "the file is UTF-16; it was read, but save exports as UTF-8"))
            yield from self._utf16_lines()
            return
        if head.startswith(b"\xef\xbb\xbf"):
            self._raw.read(3)
        for raw in _bounded(self._raw.readline, b"\n"):
            self.line += 1
            if raw is None:
                yield OVERLONG + "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not self._warned_encoding:
                    self._warned_encoding = True
                    self._problems.append(Problem(
                        "encoding-not-utf8", self.name, self.line, None,
                        f"the file is not UTF-8 (first at line {self.line}, byte {exc.start + 1}); it was read as "
                        "Windows-1252: check the output, and save exports as UTF-8"))
                yield raw.decode("cp1252", errors="replace")

    def _utf16_lines(self) -> Iterator[str]:
        text = io.TextIOWrapper(self._raw, encoding="utf-16", newline="")
        for line in _bounded(text.readline, "\n"):
            self.line += 1
            yield OVERLONG + "\n" if line is None else line

    def csv_rows(self, lines: Iterator[str], *, delimiter: str = ",",
                 max_field: int = 10_000) -> Iterator[tuple[int, list[str]] | Problem | Refused]:
        """The rows after the header as (row number, cells), with problems (and a Refused) for rows that cannot
        be read; blank rows are skipped (exports often end with some). A field longer than `max_field` (an
        unclosed quote swallowing the rows after it, usually) is a malformed row."""
        csv.field_size_limit(max_field)  # the csv module's limit is per process; every reader sets its own
        rows = csv.reader(lines, delimiter=delimiter)
        number = 1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error:
                number += 1
                yield Problem("malformed-row", self.name, number, None, "the row could not be read as CSV (an "
                              "unclosed quote or an over-long field); fix the export")
                yield Refused(self.name, number)
                continue
            number += 1
            yield from self.take_problems()
            if row == [OVERLONG]:
                yield Problem("line-too-long", self.name, number, None, f"the line is longer than {MAX_LINE} "
                              "characters, which no export row is; it was skipped: check the export")
                yield Refused(self.name, number)
            elif any(cell.strip() for cell in row):
                yield number, row


# What a spreadsheet runs when a cell starts with it (OWASP "CSV injection"): = + - @, also after a tab or
# carriage return, which some programs take as the start of a cell.
_FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")  # with their full-width forms
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def formula_like(cell: str) -> bool:
    """True when a text cell would be run as a formula by a spreadsheet that opens it. A plain number ("-3",
    "+44") and a lone dash or dashes (a placeholder for "none") are not: a spreadsheet shows them as they are.
    Callers check only free-text and identifier fields: dates are parsed and codes checked against their
    code lists, which refuse anything else already."""
    text = cell.lstrip(" ")
    if text[:1] in _FORMULA_START:
        return not (_NUMBER.fullmatch(text.strip()) or text.strip(" -") == "")
    for mark in ("\t", "\r"):
        at = text.find(mark)
        while at != -1:
            rest = text[at + 1:].lstrip(" \t\r\n")
            if rest[:1] in _FORMULA_START and not _NUMBER.fullmatch(rest.strip()):
                return True
            at = text.find(mark, at + 1)
    return False


FORMULA_ADVICE = ("the value starts with =, +, - or @ (or has one after a tab or line break), which a spreadsheet "
                  "would run as a formula; the row was not used: remove that character in the source and export "
                  "again")


def _bounded(readline: Callable, newline):
    """The lines `readline` gives, each at most MAX_LINE long; None in place of a longer one, which is read
    past in pieces so it never sits in memory whole."""
    while True:
        line = readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(newline):
            while line and not line.endswith(newline):
                line = readline(MAX_LINE)
            yield None
            continue
        yield line

