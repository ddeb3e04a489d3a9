"""RabbitMQ transport through pika: quorum queues, persistent messages, publisher confirms with
`mandatory`, manual acks, and reconnection that republishes whatever was not confirmed.

Topology (created by `sgx broker setup`): exchange `sgx.ingress` -> queue `ingress`; exchange
`sgx.deliver` -> one `deliver.<participant>` queue each; `sgx.dead-letter` -> `dead-letter`.
Delivery limit and dead-lettering are policies, so they can change without redeclaring queues.

TLS: `amqps://user:password@host:port/vhost?cafile=/path/ca.pem` connects with TLS and verifies the
broker's certificate (chain and host name) against that CA file; without `cafile`, against the system's
CAs. A certificate that does not verify raises BrokerNotTrusted; an amqps URL never falls back to plaintext.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils import io_services_utils
from pika.exceptions import (
    AMQPChannelError,
    AMQPConnectionError,
    ChannelClosedByBroker,
    NackError,
)

from broker.transport.base import (
    CONNECTION_USER,
    DEAD_LETTER,
    INGRESS,
    Capabilities,
    Delivery,
    Envelope,
    Transport,
    routing_name,
    unroutable,
)
from standard.errors import BrokerNotTrusted, TransportUnavailable, UnrecoverableBrokerError

log = logging.getLogger("sgx.transport.amqp")


_WRITE_CHUNK = 256 * 1024


def _coalesce_writes() -> None:
    """Send buffered frames together. pika buffers each AMQP frame separately (a publish is three frames, an ack
    one) and sends them with one system call each when the socket is writable, so a batch of a hundred
    publishes cost some three hundred system calls and as many TCP segments for the broker to read. This
    `_produce` joins waiting frames into writes of up to 256 KiB (bounded, so a partial send never re-copies a
    large buffer); the bytes and their order are unchanged. Only on the pinned pika, whose transport this
    replaces a method of."""
    transport = io_services_utils._AsyncPlaintextTransport
    if pika.__version__ != "1.4.4" or getattr(transport, "_sgx_coalesced", False):
        return

    def _produce(self) -> None:
        buffers = self._tx_buffers
        while buffers:
            if len(buffers) > 1 and len(buffers[0]) < _WRITE_CHUNK:
                parts, size = [], 0
                while buffers and size < _WRITE_CHUNK:
                    parts.append(buffers.popleft())
                    size += len(parts[-1])
                buffers.appendleft(b"".join(parts))
            sent = self._sigint_safe_send(self._sock, buffers[0])
            chunk = buffers.popleft()
            if sent < len(chunk):
                buffers.appendleft(chunk[sent:])
            self._tx_buffered_byte_count -= sent

    transport._produce = _produce
    transport._sgx_coalesced = True


_coalesce_writes()

INGRESS_EXCHANGE = "sgx.ingress"
DELIVER_EXCHANGE = "sgx.deliver"
DEAD_LETTER_EXCHANGE = "sgx.dead-letter"
QUORUM = {"x-queue-type": "quorum"}


def exchange_for(queue: str) -> str:
    if queue == INGRESS:
        return INGRESS_EXCHANGE
    if queue == DEAD_LETTER:
        return DEAD_LETTER_EXCHANGE
    return DELIVER_EXCHANGE


class RabbitDelivery(Delivery):
    def __init__(self, transport: RabbitTransport, channel: BlockingChannel, generation: int, tag: int,
                 envelope: Envelope, redelivered: bool, count: int):
        self._transport, self._channel, self._generation, self._tag = transport, channel, generation, tag
        self.envelope, self.redelivered, self.delivery_count = envelope, redelivered, count

    def _settle(self, action: str, requeue: bool = False, *, flush: bool = True) -> None:
        if self._generation != self._transport._generation:
            # The connection it came on is gone: the broker has requeued it already; acking
            # a tag from an old channel would be a channel error.
            return
        try:
            channel = self._channel
            if action == "ack" and not flush:
                channel._impl.basic_ack(self._tag)  # queued; RabbitTransport.ack_many flushes once for the lot
            elif action == "ack":
                channel.basic_ack(self._tag)
            else:
                channel.basic_reject(self._tag, requeue=requeue)
        except (AMQPConnectionError, AMQPChannelError) as exc:
            self._transport._reset()
            log.warning("could not %s a delivery (%s); the broker will redeliver it", action, type(exc).__name__)

    def ack(self) -> None:
        self._settle("ack")

    def reject(self, *, requeue: bool = True) -> None:
        self._settle("reject", requeue)


def connection_parameters(url: str) -> pika.URLParameters:
    """pika's parameters for an amqp:// or amqps:// URL. For amqps, TLS with the broker's certificate verified
    (chain and host name) against the CA file named by the URL's `cafile` query value, or the system's CAs."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    cafile = next((value for name, value in query if name == "cafile"), None)
    if cafile is not None and parts.scheme != "amqps":
        raise UnrecoverableBrokerError("a cafile is given for a plaintext amqp:// URL; use amqps:// for TLS")
    rest = [(name, value) for name, value in query if name != "cafile"]
    params = pika.URLParameters(urlunsplit(parts._replace(query=urlencode(rest))))
    if parts.scheme == "amqps":
        try:
            context = ssl.create_default_context(cafile=cafile)  # CERT_REQUIRED and host name checked
        except (OSError, ssl.SSLError) as exc:
            raise UnrecoverableBrokerError(f"the CA file {cafile} named by the URL's cafile cannot be used "
                                           f"({type(exc).__name__}: {exc}); give the PEM file of the CA that "
                                           "issued the broker's certificate") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        params.ssl_options = pika.SSLOptions(context, server_hostname=parts.hostname)
    return params


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a failed connection attempt if the handshake was refused (a certificate that does
    not verify, a server that does not speak TLS); pika wraps it in layers."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            # A connection cut mid-handshake (a broker stopping) is transient, not a refusal of trust.
            transient = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
            return None if isinstance(current, transient) else current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [e for e in getattr(current, "exceptions", None) or [] if isinstance(e, BaseException)]
        pending += [e for e in current.args if isinstance(e, BaseException)]
    return None


class RabbitTransport(Transport):
    name = "amqp"
    capabilities = Capabilities(participant_users=True)

    def __init__(self, url: str, *, prefetch: int = 100, publish_attempts: int = 5, retry_delay: float = 1.0,
                 heartbeat: int = 30, queue_names: Mapping[str, str] | None = None):
        """`queue_names` maps a delivery queue's name (its routing key, `deliver.<id>`) to the private name `sgx
        broker setup` gave the queue itself; reads, declares and depth use the private name, publishes the key."""
        self.queue_names = dict(queue_names or {})
        self.params = connection_parameters(url)
        if self.params.ssl_options is not None:
            self.capabilities = replace(type(self).capabilities, encrypted=True)
        self.params.heartbeat = heartbeat
        self.params.blocked_connection_timeout = 60
        self.user = self.params.credentials.username
        self.prefetch = prefetch
        self.publish_attempts, self.retry_delay = publish_attempts, retry_delay
        self._conn: pika.BlockingConnection | None = None
        self._ch: BlockingChannel | None = None
        self._consumers: dict[str, tuple[BlockingChannel, deque]] = {}
        self._generation = 0
        self._pub: _ConfirmingPublisher | None = None

    # -- connection --------------------------------------------------------------------------------
    def _channel(self) -> BlockingChannel:
        if self._ch is not None and self._ch.is_open:
            return self._ch
        self._reset()
        try:
            self._conn = pika.BlockingConnection(self.params)
            self._ch = self._conn.channel()  # administration only: publishing has its own confirming channel
        except (AMQPConnectionError, ssl.SSLError) as exc:  # pika re-raises a failed handshake's own error
            self._reset()
            tls = _tls_failure(exc) if self.params.ssl_options is not None else None
            if tls is not None:
                raise BrokerNotTrusted(
                    f"TLS to RabbitMQ at {self.params.host}:{self.params.port} failed: "
                    f"{getattr(tls, 'verify_message', None) or tls.reason or type(tls).__name__}; check the "
                    "broker's certificate and the CA file given by the URL's cafile (nothing was sent, and "
                    "there is no fallback to plaintext)") from None
            raise TransportUnavailable(f"cannot reach RabbitMQ at {self.params.host}:{self.params.port} "
                                       f"({type(exc).__name__}); messages wait in the outbox") from exc
        self._generation += 1
        return self._ch

    def _reset(self) -> None:
        self._consumers.clear()
        self._pub = None
        conn, self._conn, self._ch = self._conn, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is being thrown away; nothing to recover
                log.debug("error closing a broken connection", exc_info=True)

    def close(self) -> None:
        self._reset()

    # -- publishing --------------------------------------------------------------------------------
    def _properties(self, envelope: Envelope) -> pika.BasicProperties:
        return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, message_id=envelope.message_id,
                                    content_type="application/fhir+json", headers=dict(envelope.headers),
                                    user_id=self.user)

    def publish(self, queue: str, envelope: Envelope) -> None:
        self.publish_many([(queue, envelope)])

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> None:
        """Publish with asynchronous confirms and `mandatory`, waiting once for the whole batch. After a
        lost connection, reconnect and republish the batch (the receiver drops duplicates by message id).
        Messages the broker returns (no queue bound) are reported by Unroutable once the rest are confirmed."""
        for attempt in range(1, self.publish_attempts + 1):
            try:
                self._channel()
                if self._pub is None:
                    self._pub = _ConfirmingPublisher(self._conn)
                self._pub.publish([(exchange_for(q), q, e.body, self._properties(e)) for q, e in items])
            except BrokerNotTrusted:
                raise
            except ChannelClosedByBroker as exc:
                self._reset()
                if exc.reply_code in (403, 406):
                    raise UnrecoverableBrokerError(f"RabbitMQ refused the publish: {exc.reply_text}") from None
                error: Exception = exc
            except (NackError, AMQPConnectionError, AMQPChannelError, TransportUnavailable) as exc:
                self._reset()
                error = exc
            else:
                returned = self._pub.returned
                undelivered = [i for i, (q, e) in enumerate(items) if (q, e.message_id) in returned]
                if undelivered:  # the others are confirmed: the caller must not publish them again
                    raise unroutable(items, undelivered)
                return
            if attempt < self.publish_attempts:
                time.sleep(self.retry_delay)
        raise TransportUnavailable(f"publish not confirmed after {self.publish_attempts} attempts "
                                   f"({type(error).__name__}); the messages stay in the outbox")

    # -- consuming ---------------------------------------------------------------------------------
    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """One socket write for a batch of acks instead of a write and a poll per ack."""
        for delivery in deliveries:
            delivery._settle("ack", flush=False)
        try:
            if self._conn is not None and self._conn.is_open:
                self._conn.process_data_events(time_limit=0)
        except (AMQPConnectionError, AMQPChannelError) as exc:
            self._reset()
            log.warning("could not send acks (%s); the broker will redeliver those messages", type(exc).__name__)

    def get(self, queue: str, timeout: float = 0.0) -> RabbitDelivery | None:
        deadline = time.monotonic() + timeout
        try:
            if queue not in self._consumers:
                self._channel()
                # One channel per queue read; deliveries land in a local buffer as they arrive.
                channel = self._conn.channel()
                channel.basic_qos(prefetch_count=self.prefetch)
                buffer: deque = deque()
                channel.basic_consume(self._physical(queue),
                                      lambda _ch, m, p, b, buffer=buffer: buffer.append((m, p, b)), auto_ack=False)
                self._consumers[queue] = (channel, buffer)
            channel, buffer = self._consumers[queue]
            if not buffer:  # deliveries already buffered need no poll (a poll is a system call)
                self._conn.process_data_events(time_limit=0)
            while not buffer and time.monotonic() < deadline:
                self._conn.process_data_events(time_limit=min(0.05, max(deadline - time.monotonic(), 0.001)))
            if not buffer:
                return None
            method, properties, body = buffer.popleft()
        except ChannelClosedByBroker as exc:
            self._reset()
            raise UnrecoverableBrokerError(f"RabbitMQ refused to deliver from {queue!r}: {exc.reply_text}") from None
        except (AMQPConnectionError, AMQPChannelError) as exc:
            self._reset()
            raise TransportUnavailable(f"lost the connection to RabbitMQ ({type(exc).__name__})") from exc
        if method is None:
            return None
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in (properties.headers or {}).items()}
        count = int(headers.pop("x-delivery-count", 0) or 0) + 1
        # The publisher's sgx-sender header stays as sent; the user id, which the broker checked against the
        # connection, travels beside it for the router to compare (a publisher cannot set this one).
        headers[CONNECTION_USER] = properties.user_id or ""
        envelope = Envelope(properties.message_id or "", body,
                            {k: v for k, v in headers.items() if isinstance(v, str)} | _death(properties.headers))
        return RabbitDelivery(self, channel, self._generation, method.delivery_tag, envelope, method.redelivered,
                              count)

    # -- administration ----------------------------------------------------------------------------
    def _physical(self, queue: str) -> str:
        return self.queue_names.get(queue, queue)

    def declare(self, queue: str) -> None:
        """Declare the queue under its private name (if it has one) and bind it with its public routing key."""
        channel = self._channel()
        exchange = exchange_for(queue)
        channel.exchange_declare(exchange, exchange_type="direct", durable=True)
        channel.queue_declare(self._physical(queue), durable=True, arguments=QUORUM)
        channel.queue_bind(self._physical(queue), exchange, routing_key=queue)

    def has_queue(self, queue: str) -> bool:
        """A passive declare on a channel of its own (a missing queue closes the channel it was asked on,
        which must not be the one consuming)."""
        try:
            self._channel()
            channel = self._conn.channel()
            try:
                channel.queue_declare(self._physical(queue), passive=True)
            except ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    return False
                if exc.reply_code == 403:  # a broker that checks passive declares (4.2.6 on) and a user with no
                    return True  # right to ask: publishing is mandatory, so a missing queue is still reported
                raise UnrecoverableBrokerError(f"RabbitMQ refused to say whether {queue!r} exists: "
                                               f"{exc.reply_text}") from None
            channel.close()
            return True
        except (AMQPConnectionError, AMQPChannelError) as exc:
            self._reset()
            raise TransportUnavailable(f"lost the connection to RabbitMQ ({type(exc).__name__})") from exc

    def depth(self, queue: str) -> int:
        return self._channel().queue_declare(self._physical(queue), passive=True).method.message_count


def _death(headers: dict | None) -> dict[str, str]:
    deaths = (headers or {}).get("x-death") or []
    if not deaths:
        return {}
    first = deaths[0]
    reason = first.get("reason", b"")
    queue = first.get("queue", b"")
    queue = queue.decode() if isinstance(queue, bytes) else str(queue)
    return {"x-death-reason": reason.decode() if isinstance(reason, bytes) else str(reason),
            "x-death-queue": routing_name(queue)}


def _noop() -> None:
    return None


class _ConfirmingPublisher:
    """Publisher confirms for a whole batch on a BlockingConnection.

    pika's BlockingChannel waits for the confirm of each message before sending the next (about
    five times slower on quorum queues). Its underlying channel object takes an ack/nack callback,
    so a batch is sent at once and the connection is pumped until every delivery tag is settled.
    pika is pinned; `tests/integration/test_transport_contract.py` covers this path on a real broker.
    """

    def __init__(self, connection: pika.BlockingConnection, timeout: float = 60.0):
        self.connection, self.timeout = connection, timeout
        self._blocking = connection.channel()
        self.channel = self._blocking._impl
        self.next_tag = 1
        self.outstanding: set[int] = set()
        self.nacked: list[int] = []
        self.returned: set[tuple[str, str | None]] = set()  # (routing key, message id) of each returned
        self.closed: list[Exception] = []
        selected: list[bool] = []
        self.channel.add_on_return_callback(lambda _ch, method, props, _body: self.returned.add(
            (method.routing_key, props.message_id)))
        # The broker closing the channel (a body over max_message_size, a refused user_id) ends the wait at once
        # with its reason, instead of at the confirm timeout as if the broker were down.
        self.channel.add_on_close_callback(self._on_close)
        self.channel.confirm_delivery(ack_nack_callback=self._on_confirm,
                                      callback=lambda _f: (selected.append(True), self._wake()))
        self._pump(lambda: bool(selected))

    def _on_close(self, _channel, reason: Exception) -> None:
        self.closed.append(reason)
        if self.connection.is_open:  # a closing connection ends the wait by itself
            self._wake()

    def _wake(self) -> None:
        # process_data_events returns early only for events of the blocking layer; a no-op callback
        # is one, so the wait ends as soon as a confirm arrives instead of at its time limit.
        self.connection.add_callback_threadsafe(_noop)

    def _on_confirm(self, frame) -> None:
        method = frame.method
        tags = {t for t in self.outstanding if t <= method.delivery_tag} if method.multiple else {method.delivery_tag}
        self.outstanding -= tags
        if isinstance(method, pika.spec.Basic.Nack):
            self.nacked.extend(tags)
        if not self.outstanding:
            self._wake()

    def _pump(self, done) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            if self.closed:
                raise self.closed[0]
            if time.monotonic() > deadline:
                raise TransportUnavailable(f"RabbitMQ did not confirm within {self.timeout:.0f} s")
            self.connection.process_data_events(time_limit=1.0)

    def publish(self, messages: list[tuple[str, str, bytes, pika.BasicProperties]]) -> None:
        self.nacked.clear()
        self.returned.clear()
        for exchange, routing_key, body, properties in messages:
            self.channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
            self.outstanding.add(self.next_tag)
            self.next_tag += 1
        self._pump(lambda: not self.outstanding)  # a returned message is confirmed too, after its return
        if self.nacked:
            raise NackError([])
