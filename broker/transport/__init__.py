"""Transports by name: `embedded` (SQLite file) and `amqp` (RabbitMQ)."""

from __future__ import annotations

from pathlib import Path

from broker.transport.base import DEAD_LETTER, INGRESS, Delivery, Envelope, Transport, delivery_queue

__all__ = ["DEAD_LETTER", "INGRESS", "Delivery", "Envelope", "Transport", "delivery_queue", "open_transport"]


def open_transport(url: str, **options) -> Transport:
    """`amqp://user:password@host:port/vhost` for RabbitMQ; a file path or `sqlite:///path` for the embedded one."""
    if url.startswith(("amqp://", "amqps://")):
        from broker.transport.rabbitmq import RabbitTransport

        return RabbitTransport(url, **options)
    from broker.transport.embedded import EmbeddedTransport

    return EmbeddedTransport(Path(url.removeprefix("sqlite://")), **options)
