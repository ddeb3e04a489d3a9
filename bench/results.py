"""Add a benchmark's rows to its table in bench/RESULTS.md (the tables sit in sections with notes after them,
so appending to the file would put a row under another benchmark's notes)."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"


def add_rows(header: str, rows: list[str], results: Path = RESULTS) -> None:
    """Insert `rows` after the last row of the first table whose header line starts with `header`.

    Raises:
        LookupError: no table in the file has that header (the header changed: update the file by hand).
    """
    lines = results.read_text(encoding="utf-8").splitlines()
    try:
        at = next(i for i, line in enumerate(lines) if line.startswith(header))
    except StopIteration:
        raise LookupError(f"no table in {results} starts with {header!r}; add the rows by hand") from None
    end = at + 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[end:end] = rows
    results.write_text("\n".join(lines) + "\n", encoding="utf-8")
