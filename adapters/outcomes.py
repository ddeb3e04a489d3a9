"""Every row read ends in exactly one named outcome, counted the same way in the summary and both reports.

A row can feed several things (a Header row feeds every placement of its child; an episode a placement's
start and its end), so when a row is given several outcomes the one that needs most attention is kept:
refused, then held back, then sent, then unchanged, then not notifiable. A row that no step settles is
never dropped: the run gives it the `unaccounted-row` finding and counts it held back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from adapters.base import RowId

SENT, UNCHANGED, NOT_NOTIFIABLE, HELD_BACK, REFUSED = "sent", "unchanged", "not_notifiable", "held_back", "refused"
OUTCOMES = (SENT, UNCHANGED, NOT_NOTIFIABLE, HELD_BACK, REFUSED)
_WEIGHT = {NOT_NOTIFIABLE: 0, UNCHANGED: 1, SENT: 2, HELD_BACK: 3, REFUSED: 4}

# What each outcome means, for the report page and the docs.
EXPLAINED = {
    SENT: "Its facts went into a message that was queued in the outbox and sent (in a dry run: would be).",
    UNCHANGED: "Its facts were already sent by an earlier run and have not changed: nothing to send again.",
    NOT_NOTIFIABLE: "Read and understood, but nothing about it is for the exchange; the reason is given below.",
    HELD_BACK: "The row is readable, but its messages wait until the finding about it is fixed (in the export "
               "or the directory); they are sent by the run after the fix.",
    REFUSED: "The row could not be used as it stands (a bad value, another authority's row, text a spreadsheet "
             "would run); see its finding, correct the export and run again.",
}
# Reasons a row is not notifiable. Every not-notifiable row carries one of these.
REASONS = {
    "own-area": "the child is placed in the placing authority's own area: the exchange tells other areas only",
    "not-at-registered-setting": "the placement is not at an Ofsted-registered setting (URN XXXXXXX), so no "
                                 "setting's area is told",
    "outside-england": "the placement is outside England (WAL, SCO, NIR, NUK): no English area to tell",
    "no-placement": "the child has no placement in the episodes given",
    "table-not-used": "a table the exchange does not send anything from (reviews, OC2, adoption, ...)",
    "not-missing": "an absence without authorisation (MISSING = A), which is not sent",
    "not-placed-elsewhere": "the exchange has not been told the child lived at a setting in another area on "
                            "that day",
    "no-signal": "a child with no Section 47 enquiry or child protection plan in the file",
    "file-header": "the file's header (its authority is checked against --la)",
    "other-la": "another authority's row, left for that authority's own run (--split-by-la)",
}


class Ledger:
    """The outcome of each row (file, row) read in a run."""

    def __init__(self) -> None:
        self._outcome: dict[RowId, str] = {}
        self._reason: dict[RowId, str] = {}
        self._pending: set[RowId] = set()
        self._refused_files = 0  # rows of files refused whole (a table not recognised)

    def read(self, where: RowId) -> None:
        """A row was read into a record; it must be settled before the run ends."""
        if where not in self._outcome:
            self._pending.add(where)

    def refuse_file(self, rows: int) -> None:
        self._refused_files += rows

    def settle(self, rows: Iterable[RowId], outcome: str, reason: str | None = None) -> None:
        """Give rows an outcome; a row already given a weightier one keeps it."""
        assert outcome in _WEIGHT and (outcome != NOT_NOTIFIABLE or reason in REASONS), (outcome, reason)
        for where in rows:
            self._pending.discard(where)
            known = self._outcome.get(where)
            if known is None or _WEIGHT[outcome] > _WEIGHT[known]:
                self._outcome[where] = outcome
                if reason:
                    self._reason[where] = reason
                else:
                    self._reason.pop(where, None)

    def unsettled(self) -> list[RowId]:
        return sorted(self._pending, key=lambda w: (w[0], w[1] or 0))

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Rows by outcome (every outcome named, zeros included) and not-notifiable rows by reason."""
        by = Counter(self._outcome.values())
        by[REFUSED] += self._refused_files
        reasons = Counter(self._reason[w] for w, o in self._outcome.items() if o == NOT_NOTIFIABLE)
        return {o: by[o] for o in OUTCOMES}, dict(sorted(reasons.items()))

    @property
    def total(self) -> int:
        return len(self._outcome) + len(self._pending) + self._refused_files
