"""Progress lines for the long-running commands (`sgx broker route`, `sgx node run`): every so often, on stderr, how
many messages were handled so far, how many refused, and how many wait in the queue, so an operator watching a
service's log sees it working (or stuck) without stopping it.

The line is made on a thread of its own with connections of its own (the router's audit, the queue's depth), so the
routers and the node are neither slowed nor changed by being watched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from broker.transport import Transport

PROGRESS_SECONDS = 30.0  # between two progress lines, by default
log = logging.getLogger(__name__)


@contextlib.contextmanager
def every(seconds: float, line: Callable[[], str], echo: Callable[[str], object]) -> Iterator[None]:
    """While the block runs, `echo(line())` every `seconds` (never when `seconds` is 0 or less). A line that cannot
    be made (the broker away for a moment) is skipped; the next one is tried in turn."""
    if seconds <= 0:
        yield
        return
    done = threading.Event()

    def report() -> None:
        while not done.wait(seconds):
            try:
                text = line()
            except Exception as exc:  # noqa: BLE001 - progress is a courtesy: it must never stop the work it reports on
                log.debug("no progress line this time (%s)", type(exc).__name__)
                continue
            echo(text)

    thread = threading.Thread(target=report, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _depth(open_transport: Callable[[], Transport], queue: str) -> Callable[[], str]:
    """How many messages wait in `queue`, through a transport opened on first use (in the reporting thread)."""
    held: list[Transport] = []

    def depth() -> str:
        try:
            if not held:
                held.append(open_transport())
            return f"{held[0].depth(queue):,}"
        except Exception:  # noqa: BLE001 - the broker away for a moment: the depth is unknown, not an error
            held.clear()
            return "unknown"

    return depth


def routing(state_file: Path, open_transport: Callable[[], Transport]) -> Callable[[], str]:
    """The line for `sgx broker route`: decisions the routers wrote to the audit since this was made, and the
    ingress queue's depth. "routed 1,234 so far; 3 refused; ingress depth 12" (and duplicates when there are)."""
    from broker.audit import AuditLog
    from broker.transport import INGRESS

    log: list[AuditLog] = []
    start, counts = AuditLog(state_file).last()[0], {"accepted": 0, "duplicate": 0, "rejected": 0}
    depth = _depth(open_transport, INGRESS)

    def line() -> str:
        nonlocal start
        if not log:  # a connection of this thread's own: SQLite connections stay in the thread that made them
            log.append(AuditLog(state_file))
        start, new = log[0].decisions_after(start)
        for decision in counts:
            counts[decision] += new.get(decision, 0)
        routed = sum(counts.values())
        duplicates = f"; {counts['duplicate']:,} duplicate(s)" if counts["duplicate"] else ""
        return f"routed {routed:,} so far; {counts['rejected']:,} refused{duplicates}; ingress depth {depth()}"

    return line


class ReceivingTally:
    """What a node's run has taken and stored so far, counted as each batch is received (the node's own
    `receive_many`, wrapped): `line()` is the progress line for `sgx node run`."""

    def __init__(self, node, open_transport: Callable[[], Transport]):
        from broker.transport import delivery_queue

        self.taken = self.stored = 0
        self._lock = threading.Lock()
        self._depth = _depth(open_transport, delivery_queue(node.participant_id))
        receive_many = node.receive_many

        def counted(deliveries):
            stored = receive_many(deliveries)
            with self._lock:
                self.taken += len(deliveries)
                self.stored += stored
            return stored

        node.receive_many = counted

    def line(self) -> str:
        with self._lock:
            taken, stored = self.taken, self.stored
        return f"received {stored:,} so far; {taken - stored:,} refused or handed back; queue depth {self._depth()}"
