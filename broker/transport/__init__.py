"""Transports by name: `embedded` (SQLite file) and `amqp` (RabbitMQ)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from broker.transport.base import DEAD_LETTER, INGRESS, Delivery, Envelope, Transport, delivery_queue

__all__ = ["DEAD_LETTER", "INGRESS", "Delivery", "Envelope", "Transport", "delivery_queue", "exchange_transport",
           "open_transport"]


def open_transport(url: str, **options) -> Transport:
    """`amqp://user:password@host:port/vhost` for RabbitMQ; a file path or `sqlite:///path` for the embedded one."""
    if url.startswith(("amqp://", "amqps://")):
        from broker.transport.rabbitmq import RabbitTransport

        return RabbitTransport(url, **options)
    from broker.transport.embedded import EmbeddedTransport

    return EmbeddedTransport(Path(url.removeprefix("sqlite://")), **options)


def exchange_transport(url: str, participants: Iterable[str]) -> Transport:
    """A transport to an exchange whose directory lists `participants`. RabbitMQ's queues come from
    `sgx broker setup`; the embedded transport has no setup step, so its ingress and one delivery queue per
    participant are declared here."""
    transport = open_transport(url)
    if transport.name == "embedded":
        transport.declare(INGRESS)
        for pid in participants:
            transport.declare(delivery_queue(pid))
    return transport

