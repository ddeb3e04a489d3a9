"""What every reader yields: records, and problems that name the file, row and field and say what to do.

A reader never raises on bad content: each bad row becomes a Problem and the rest of the file is read.
Problems never carry the values they complain about (they may be a child's personal data).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from standard.compose import name_uuid

Value = str | date | None


@dataclass(frozen=True)
class Problem:
    """Something wrong in an input file. `row` counts from 1 for the header line."""

    code: str
    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f", row {self.row}" if self.row else "") + (f", {self.field}" if self.field else "")
        return f"{where}: {self.code}: {self.message}"


RowId = tuple[str, int]  # (file, row): where a row came from; every row read ends in one outcome (outcomes.py)


@dataclass(frozen=True)
class Refused:
    """A row a reader could not use (its problems come just before it). `rows` counts more than one when a
    whole file is refused (a table not recognised): its rows are refused together, none silently."""

    file: str
    row: int | None
    rows: int = 1
    seq: int | None = None  # for XML, whose elements may share a line: the element's place in the file

    @property
    def where(self) -> RowId:
        return (self.file, self.seq if self.seq is not None else self.row)


@dataclass
class Record:
    """One row of a recognised table, with its values cleaned (codes upper-cased, dates parsed)."""

    table: str
    row: int
    values: dict[str, Value] = field(default_factory=dict)
    file: str = ""
    seq: int | None = None  # for XML, whose elements may share a line: the element's place in the file

    @property
    def where(self) -> RowId:
        return (self.file, self.seq if self.seq is not None else self.row)


class Reader(ABC):
    """A reader of one export format. `position` is how many bytes of the current file have been read, for
    progress bars; readers that cannot tell leave it at 0."""

    name: str
    position: int = 0

    @abstractmethod
    def read(self, path: Path) -> Iterator[Record | Problem | Refused]:
        """Yield every record and every problem of a file, in file order, and a Refused for each row (or
        whole file) not used."""


def numbered(items: Iterator[Record | Problem | Refused]) -> Iterator[Record | Problem | Refused]:
    """Records and refusals numbered in file order (`seq`), for XML readers: elements of a one-line file
    share a line, and each must keep its own outcome."""
    n = 0
    for item in items:
        if isinstance(item, Record):
            n += 1
            item.seq = n
        elif isinstance(item, Refused) and item.rows == 1 and item.row is not None:
            n += 1
            item = Refused(item.file, item.row, 1, n)
        yield item


_MESSAGE_IDS = uuid.UUID("6f1c2a8e-5b1d-4c57-9a0e-3d2f8b7c9e41")


def message_id_for(sender: str, key: str, digest: str) -> str:
    """The same fact always gets the same message id: if a run dies after queueing a message but before
    remembering it, the next run builds it again with the same id; the outbox keeps the copy it has and the
    exchange refuses an id it has already routed."""
    return f"urn:uuid:{name_uuid(_MESSAGE_IDS, f'{sender}|{key}|{digest}')}"
