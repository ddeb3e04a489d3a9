"""The transport interface: durable queues with confirmed publishing and acknowledged delivery.

Two implementations share it and one contract test suite: the embedded SQLite transport (one
machine, the demo, tests) and RabbitMQ (quorum queues, publisher confirms, manual acks).
Semantics both keep:
- `publish` returns only once the message is durable; unknown queues raise Unroutable.
- `publish_many` delivers every message whose queue exists, durably, even when some have none; it then
  raises Unroutable whose `undelivered` lists the positions of the ones that went nowhere. A caller
  therefore never needs to publish the others again (which would deliver them twice).
- an unreachable broker or queue database raises TransportUnavailable (recoverable: try later).
- `depth` counts the messages waiting, not those a consumer holds; `ack_many` settles deliveries together.
- a delivery stays owned by the consumer until `ack`; if the consumer dies it comes back,
  marked redelivered; each failed delivery counts, and once a message has failed more times than
  the delivery limit it is dead-lettered with its reason (RabbitMQ's quorum-queue rule).
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from standard.errors import Unroutable

INGRESS = "ingress"
DEAD_LETTER = "dead-letter"
DEFAULT_DELIVERY_LIMIT = 5
# Set on each delivery by a transport that authenticates publishers (RabbitMQ: the AMQP user_id, which the
# broker checks against the connection's user; "" when the publisher sent none). A publisher's own copy of it
# is dropped. Absent: the transport authenticates nobody (the embedded one, on one machine).
CONNECTION_USER = "sgx-connection-user"


def delivery_queue(participant_id: str) -> str:
    """The queue a participant reads its messages from, by the name messages are routed to it with (on RabbitMQ
    the routing key: the queue itself has a private name, `private_queue_name`)."""
    return f"deliver.{participant_id}"


_PRIVATE_SUFFIX = re.compile(r"\.[0-9a-f]{32}$")


def private_queue_name(participant_id: str) -> str:
    """A name for a participant's delivery queue that no one else can guess. RabbitMQ before 4.2.6 answers a
    passive declare of any queue without a permission check, so a name others can work out would tell them how
    many messages wait for the participant and whether it is connected."""
    return f"{delivery_queue(participant_id)}.{secrets.token_hex(16)}"


def routing_name(queue: str) -> str:
    """The name a queue is routed to by (`deliver.<id>`), from its private name or from itself."""
    return _PRIVATE_SUFFIX.sub("", queue) if queue.startswith("deliver.") else queue


@dataclass(frozen=True)
class Capabilities:
    """What a transport does beyond the shared contract, so callers ask it rather than check its class or URL.

    Attributes:
        declares_queues: queues come into being when a client declares them (no setup step); the exchange's
            queues are declared on connecting. False on RabbitMQ, whose topology `sgx broker setup` creates.
        participant_users: each participant connects as its own broker user, with a password from
            `sgx broker setup`; the broker checks the sender against that user.
        encrypted: the connection is TLS, with the broker's certificate verified.
    """

    declares_queues: bool = False
    participant_users: bool = False
    encrypted: bool = False


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
    """A named transport (`embedded`, `amqp`) and what it can do (`capabilities`)."""

    name: str
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    def publish(self, queue: str, envelope: Envelope) -> None:
        """Publish and wait until the message is durable. Raises Unroutable or TransportUnavailable."""

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """Publish several messages, confirmed together; all are durable when it returns.

        Raises:
            Unroutable: some had no queue; `undelivered` gives their positions and every other one is durable.
            TransportUnavailable: the transport could not be reached or did not confirm; publish them again.
        """
        undelivered = []
        for i, (queue, envelope) in enumerate(items):
            try:
                self.publish(queue, envelope)
            except Unroutable:
                undelivered.append(i)
        if undelivered:
            raise unroutable(items, undelivered)

    @abstractmethod
    def get(self, queue: str, timeout: float = 0.0) -> Delivery | None:
        """The next message of a queue, or None if none arrives within `timeout` seconds."""

    def get_many(self, queue: str, limit: int) -> list[Delivery]:
        """Up to `limit` messages already waiting in a queue, oldest first, without waiting for more; transports
        that can take several at once override this."""
        taken: list[Delivery] = []
        while len(taken) < limit and (delivery := self.get(queue)) is not None:
            taken.append(delivery)
        return taken

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


def unroutable(items: Sequence[tuple[str, Envelope]], undelivered: Sequence[int]) -> Unroutable:
    """The error for a batch publish in which the items at `undelivered` found no queue."""
    queues = sorted({items[i][0] for i in undelivered})
    return Unroutable(f"no queue {', '.join(map(repr, queues))}: {len(undelivered)} of {len(items)} message(s) "
                      "were not delivered (the others were); is the participant in the directory and the "
                      "topology set up ('sgx broker setup')?", undelivered=tuple(undelivered))


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
        limit = batch_size if max_messages is None else min(batch_size, max_messages - handled)
        batch = [first, *transport.get_many(queue, limit - 1)]
        handle(batch)
        handled += len(batch)
    return handled
