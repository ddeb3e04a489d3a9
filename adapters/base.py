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


@dataclass
class Record:
    """One row of a recognised table, with its values cleaned (codes upper-cased, dates parsed)."""

    table: str
    row: int
    values: dict[str, Value] = field(default_factory=dict)
    file: str = ""


class Reader(ABC):
    """A reader of one export format. `position` is how many bytes of the current file have been read, for
    progress bars; readers that cannot tell leave it at 0."""

    name: str
    position: int = 0

    @abstractmethod
    def read(self, path: Path) -> Iterator[Record | Problem]:
        """Yield every record and every problem of a file, in file order."""


_MESSAGE_IDS = uuid.UUID("6f1c2a8e-5b1d-4c57-9a0e-3d2f8b7c9e41")


def message_id_for(sender: str, key: str, digest: str) -> str:
    """The same fact always gets the same message id: if a run dies after queueing a message but before
    remembering it, the next run builds it again with the same id; the outbox keeps the copy it has and the
    exchange refuses an id it has already routed."""
    return f"urn:uuid:{uuid.uuid5(_MESSAGE_IDS, f'{sender}|{key}|{digest}')}"
