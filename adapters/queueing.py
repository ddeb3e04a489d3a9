"""Planned messages into the sender's outbox, in batches: each batch is validated, queued in one transaction
and then remembered in the change store, so a run that dies part way resumes without sending twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from adapters.base import Problem
from adapters.placements import ChangeStore, Planned
from standard.errors import MessageInvalid
from standard.validator import Validator

BATCH = 500  # messages per outbox transaction and per publish


def event_of(item: Planned) -> str:
    return item.message["entry"][0]["resource"]["eventCoding"]["code"]


def queue(planned: list[Planned], outbox, store: ChangeStore | None, validator: Validator,
          on_batch: Callable[[int], object] = lambda n: None) -> Iterator[Planned | Problem]:
    """Queue each message (or, with no outbox, only validate it, for a dry run); yield each one queued and a
    problem for each refused by the validator."""
    for start in range(0, len(planned), BATCH):
        batch = planned[start:start + BATCH]
        if outbox is None:
            refused = []
            for i, item in enumerate(batch):
                try:
                    validator.validate(item.message)
                except MessageInvalid as exc:
                    refused.append((i, exc))
        else:
            _, refused = outbox.add_many([item.message for item in batch])
        bad = {i for i, _ in refused}
        for i, exc in refused:
            item = batch[i]
            yield Problem("message-invalid", item.file, item.row, None, f"the {event_of(item)} message built from "
                          f"this row failed the standard's validation ({exc}); correct the row")
        queued = [item for i, item in enumerate(batch) if i not in bad]
        if outbox is not None and store is not None:
            store.remember(queued)
        yield from queued
        on_batch(len(batch))
