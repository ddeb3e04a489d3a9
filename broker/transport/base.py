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
from collections.abc import Sequence
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

    @abstractmethod
    def declare(self, queue: str) -> None:
        """Make sure a queue exists (administrative; participants cannot declare on RabbitMQ)."""

    @abstractmethod
    def depth(self, queue: str) -> int:
        """Messages waiting in a queue, not counting those owned by a consumer."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
