"""Transports by name: `embedded` (SQLite file) and `amqp` (RabbitMQ, `amqps://` for TLS)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from broker.transport.base import (
    DEAD_LETTER,
    INGRESS,
    Capabilities,
    Delivery,
    Envelope,
    Transport,
    delivery_queue,
    private_queue_name,
    routing_name,
)

__all__ = ["DEAD_LETTER", "INGRESS", "Capabilities", "Delivery", "Envelope", "Transport", "capabilities_of",
           "delivery_queue", "exchange_transport", "open_transport", "private_queue_name", "routing_name",
           "with_credentials"]

_BROKER_SCHEMES = ("amqp://", "amqps://")


def _transport_class(url: str) -> type[Transport]:
    if url.startswith(_BROKER_SCHEMES):
        from broker.transport.rabbitmq import RabbitTransport

        return RabbitTransport
    from broker.transport.embedded import EmbeddedTransport

    return EmbeddedTransport


def open_transport(url: str, **options) -> Transport:
    """`amqp://user:password@host:port/vhost` (or `amqps://...?cafile=ca.pem` for TLS) for RabbitMQ; a file
    path or `sqlite:///path` for the embedded one."""
    cls = _transport_class(url)
    if url.startswith(_BROKER_SCHEMES):
        return cls(url, **options)
    return cls(Path(url.removeprefix("sqlite://")), **options)


def capabilities_of(url: str) -> Capabilities:
    """What the transport at `url` can do, without connecting to it."""
    capabilities = _transport_class(url).capabilities
    if url.startswith("amqps://"):
        from dataclasses import replace

        capabilities = replace(capabilities, encrypted=True)
    return capabilities


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` with its user and password replaced; the scheme (amqps stays amqps), host, vhost and query kept."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def exchange_transport(url: str, participants: Iterable[str]) -> Transport:
    """A transport to an exchange whose directory lists `participants`. RabbitMQ's queues come from
    `sgx broker setup`; a transport that declares its own queues gets its ingress and one delivery queue per
    participant declared here."""
    transport = open_transport(url)
    if transport.capabilities.declares_queues:
        transport.declare(INGRESS)
        for pid in participants:
            transport.declare(delivery_queue(pid))
    return transport
