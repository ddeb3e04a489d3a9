"""Planned messages into the sender's outbox, in batches: each batch is validated, queued in one transaction
and then remembered in the change store, so a run that dies part way resumes without sending twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from adapters.base import Problem
from adapters.placements import ChangeStore, Planned
from broker.workers import available_cores
from standard.errors import MessageInvalid
from standard.validator import Validator

BATCH = 2000  # messages per outbox transaction and per publish
# From this many messages a run builds, validates and signs them in worker processes, one per core; below it the
# fork is not worth its start-up and the work stays in this process.
PARALLEL_FROM = 5000


def processes_for(messages: int) -> int:
    """How many processes build, validate and sign a run of this many messages."""
    return available_cores() if messages >= PARALLEL_FROM else 1


def queue(planned: list[Planned], outbox, store: ChangeStore | None, validator: Validator,
          on_batch: Callable[[int], object] = lambda n: None) -> Iterator[Planned | Problem]:
    """Queue each message (or, with no outbox, only validate it, for a dry run); yield each one queued and a
    problem for each refused by the validator."""
    if outbox is None:
        refusals = (_refused(validator, planned[start:start + BATCH]) for start in range(0, len(planned), BATCH))
    else:
        refusals = (refused for _, refused in outbox.add_batches([item.recipe for item in planned], batch=BATCH))
    for start, refused in zip(range(0, len(planned), BATCH), refusals, strict=True):
        batch = planned[start:start + BATCH]
        bad = {i for i, _ in refused}
        for i, exc in refused:
            item = batch[i]
            yield Problem("message-invalid", item.file, item.row, None, f"the {item.event} message built from "
                          f"this row failed the standard's validation ({exc}); correct the row")
        queued = [item for i, item in enumerate(batch) if i not in bad]
        if outbox is not None and store is not None:
            store.remember(queued)
        yield from queued
        on_batch(len(batch))


def _refused(validator: Validator, batch: list[Planned]) -> list[tuple[int, MessageInvalid]]:
    """A dry run's batch: each message built and validated, nothing queued; the index and error of each refused."""
    refused = []
    for i, item in enumerate(batch):
        try:
            validator.validate(item.message)
        except MessageInvalid as exc:
            refused.append((i, exc))
    return refused
