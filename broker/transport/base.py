"""The transport interface: durable queues with confirmed publishing and acknowledged delivery.

Two implementations share it and one contract test suite: the embedded SQLite transport (one
machine, the demo, tests) and RabbitMQ (quorum queues, publisher confirms, manual acks).
Semantics both keep:
- `publish` returns only once the message is durable; unknown queues raise Unroutable.
- a delivery stays owned by the consumer until `ack`; if the consumer dies it comes back,
  marked redelivered; each failed delivery counts, and once a message has failed more times than
  the delivery limit it is dead-lettered with its reason (RabbitMQ's quorum-queue rule).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

INGRESS = "ingress"
DEAD_LETTER = "dead-letter"
DEFAULT_DELIVERY_LIMIT = 5


def delivery_queue(participant_id: str) -> str:
    """The queue a participant reads its messages from."""
    return f"deliver.{participant_id}"


@dataclass(frozen=True)
class Envelope:
    """What travels: the exact message bytes and string headers (signature, sender, delivery note)."""

    message_id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Delivery(ABC):
    """A message handed to a consumer, owned by it until ack or reject."""

    envelope: Envelope
    redelivered: bool
    delivery_count: int

    @abstractmethod
    def ack(self) -> None:
        """The work is durably done: the transport may forget the message."""

    @abstractmethod
    def reject(self, *, requeue: bool = True) -> None:
        """Processing failed: requeue it (counts toward the delivery limit) or dead-letter it now."""


class Transport(ABC):
    """A named transport (`embedded`, `amqp`)."""

    name: str

    @abstractmethod
    def publish(self, queue: str, envelope: Envelope) -> None:
        """Publish and wait until the message is durable. Raises Unroutable or TransportUnavailable."""

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """Publish several messages, confirmed together; all are durable when it returns."""
        for queue, envelope in items:
            self.publish(queue, envelope)

    @abstractmethod
    def get(self, queue: str, timeout: float = 0.0) -> Delivery | None:
        """The next message of a queue, or None if none arrives within `timeout` seconds."""

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Ack several deliveries; transports that can send the acks together override this."""
        for delivery in deliveries:
            delivery.ack()

    @abstractmethod
    def declare(self, queue: str) -> None:
        """Make sure a queue exists (administrative; participants cannot declare on RabbitMQ)."""

    def has_queue(self, queue: str) -> bool:
        """Whether the queue exists to publish to: the router asks before routing to a recipient, so that a
        participant without a queue is recorded as not reachable instead of failing the whole batch."""
        return True

    @abstractmethod
    def depth(self, queue: str) -> int:
        """Messages waiting in a queue, not counting those owned by a consumer."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def consume(transport: Transport, queue: str, handle: Callable[[list[Delivery]], object], *,
            idle_timeout: float | None = 1.0, max_messages: int | None = None, batch_size: int = 100,
            should_stop: Callable[[], bool] = lambda: False, on_idle: Callable[[], object] | None = None) -> int:
    """Feed `handle` batches from a queue: wait for one message, then take whatever else is already waiting
    (up to `batch_size`). Stops when none arrives for `idle_timeout` seconds (None: only at `should_stop`)
    or after `max_messages`; returns how many were handled."""
    handled = 0
    while not should_stop() and (max_messages is None or handled < max_messages):
        first = transport.get(queue, timeout=0.5 if idle_timeout is None else idle_timeout)
        if first is None:
            if on_idle is not None:
                on_idle()
            if idle_timeout is None:
                continue
            break
        batch = [first]
        limit = batch_size if max_messages is None else min(batch_size, max_messages - handled)
        while len(batch) < limit and (more := transport.get(queue)) is not None:
            batch.append(more)
        handle(batch)
        handled += len(batch)
    return handled
