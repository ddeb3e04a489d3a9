"""Worker processes for the CPU-heavy steps of a large run: building, validating and signing messages.

An adapter turning a large export into messages spends nearly all its time in steps that are pure and
independent per message (build the Bundle, serialise and validate it, sign it). A pool of processes does them side
by side while the parent alone keeps the databases and the connection to the exchange: a worker never opens, reads
or writes a database, so nothing it does can lose or double a message.

The pool is forked, not spawned, so a worker starts with the parent's validator (its schemas take seconds to build)
and signing key already in memory: neither is built again nor passed through a pipe. The pool is forked for its
first map, so the workers hold that map's items (the recipes of a run's messages) from the start: only their
positions and the results travel between processes.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

WORKER_NICENESS = 10
# What the parent gave the pool (a validator, a key...), as each worker process sees it: set by the fork.
_state: dict[str, Any] = {}
_ITEMS = "workers.items"  # the key in `_state` of the items a freshly forked pool was started for


def available_cores() -> int:
    """The cores this process may run on (a container's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Workers:
    """A pool of forked processes sharing out one pure step over many items, results in order.

    With `processes` 1 (or fewer items than make a fork worth it) the step runs in this process: one code path,
    the same results. `state` is handed to every call of the step as its first argument.
    """

    def __init__(self, processes: int, state: dict[str, Any], *, chunk: int = 128):
        self.processes, self.state, self.chunk = processes, state, chunk
        self._pool: ProcessPoolExecutor | None = None

    def map(self, step: Callable[[dict, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """`step(state, item)` for each item, in order; lazily, so the caller can use early results while the
        workers go on with later ones. Every item is handed to the pool at once, so work given later waits behind
        all of it: one long map at a time."""
        items = list(items)
        if self.processes <= 1 or len(items) < 2 * self.chunk:
            return (step(self.state, item) for item in items)
        if self._pool is None:
            # The workers are forked now, holding these items already: only their positions go down the pipe (a
            # large run's recipes cost more to pickle and unpickle than to send as numbers). A later map on the
            # same pool pickles its items, so they must be picklable then (the adapters map once per outbox).
            self.state[_ITEMS] = items
            return self._started().map(partial(_call_at, step), range(len(items)), chunksize=self.chunk)
        return self._started().map(partial(_call, step), items, chunksize=self.chunk)

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Everything alive now (the parsed export, the planned messages) is old and stays: out of the collector's
            # sight, the parent stops scanning it again and again, and the forked workers do not copy every page of
            # it when their own collector would have touched it.
            gc.freeze()
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_adopt, initargs=(self.state,))
        return self._pool

    def close(self) -> None:
        self.state.pop(_ITEMS, None)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            gc.unfreeze()


def _adopt(state: dict[str, Any]) -> None:
    # Runs in each worker once, just after the fork: `state` is the parent's object, inherited, never pickled.
    _state.update(state)
    # The parent is the run's one sequence of writes (queue, remember, send); the workers have work queued well
    # ahead. On a machine with as many workers as cores, the parent must not wait for a core behind them.
    os.nice(WORKER_NICENESS)
    # What a worker makes are messages, trees of dicts and lists that reference counting frees as soon as they are
    # sent back; the cycle collector would only walk them (a few per cent of a worker's time).
    gc.disable()


def _call(step: Callable[[dict, Any], Any], item: Any) -> Any:
    return step(_state, item)


def _call_at(step: Callable[[dict, Any], Any], position: int) -> Any:
    return step(_state, _state[_ITEMS][position])
