"""The exchange the sender and receiver kits play towards a system under test (SUT): a RabbitMQ virtual host of
its own, the exchange's topology, a broker user for the SUT with a participant's least privilege, and a signed
directory holding the SUT's public key (the vendor keeps its private key), the keys of the senders the kit
signs as and of the router whose delivery notes the kit writes.

The RabbitMQ node is one the kit starts itself in its work folder, or one the vendor names (a node started by
`sgx broker dev-server`, attached through its folder). Each run gets its own virtual host, removed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from broker import signing
from broker.directory import LA, LADO, OFSTED, OPERATOR, POLICE, PROVIDER, Directory, Participant
from broker.keys import SigningKey, jwk_thumbprint, read_public_key
from broker.rabbitmq.server import RabbitNode
from broker.rabbitmq.setup import permissions_for
from broker.router import DELIVERY, DELIVERY_SIGNATURE, DELIVERY_TYP, SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, delivery_queue, private_queue_name
from broker.transport.rabbitmq import INGRESS_EXCHANGE, RabbitTransport
from standard import compose
from standard.errors import ConformanceError, SafeguardingExchangeError, TransportUnavailable

ADMIN_USER = "sgx-conformance"
REFUSED, REFUSED_EXCHANGE = "conformance-refused", "sgx.conformance-refused"
# The kind of participant a sender's id names (the directory needs one; the SUT only needs the keys).
_KINDS = (("la-", LA), ("lado-", LADO), ("provider-", PROVIDER), ("police-", POLICE), ("ofsted", OFSTED))


def _kind(participant_id: str) -> str:
    return next((kind for prefix, kind in _KINDS if participant_id.startswith(prefix)), OPERATOR)


class PlayedExchange:
    """Start with `open()`, end with `close()` (or use it as a context manager)."""

    def __init__(self, work: Path, sut_participant: str, sut_public_key: Path, senders: list[str], *,
                 rabbit_dir: Path | None = None, node: RabbitNode | None = None, also_as: tuple[str, ...] = ()):
        """`also_as`: further participant ids the SUT is issued (the sender kit issues each scenario's sender),
        each with the same public key and a broker user of its own."""
        self.work, self.participant = work, sut_participant
        self.sut_ids = list(dict.fromkeys([sut_participant, *also_as]))
        self.sut_public_key, self.senders = sut_public_key, senders
        self.rabbit_dir, self.node = rabbit_dir, node
        self.started_node = False
        self.vhost = f"sgx-conformance-{secrets.token_hex(4)}"
        self.admin: RabbitTransport | None = None
        self.keys: dict[str, SigningKey] = {}
        self.revoked: dict[str, SigningKey] = {}
        self.sut_kid = ""
        self.directory = Directory()

    # -- setting up ------------------------------------------------------------------------------------
    def open(self) -> PlayedExchange:
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            public, kid = read_public_key(self.sut_public_key.read_bytes(), str(self.sut_public_key))
        except OSError as exc:
            raise ConformanceError(f"{self.sut_public_key}: cannot read the system's public key ({exc.strerror})") \
                from None
        self.sut_kid = kid or jwk_thumbprint(public)
        self._start_broker()
        self._make_directory(public)
        return self

    def _start_broker(self) -> None:
        if self.node is None and self.rabbit_dir is not None:
            if not (self.rabbit_dir / "node.json").exists():
                raise ConformanceError(f"{self.rabbit_dir}: not the folder of a RabbitMQ node started by 'sgx broker "
                                       "dev-server' (it has no node.json)")
            self.node = RabbitNode.attach(self.rabbit_dir)
        if self.node is None:
            self.node = RabbitNode(self.work / "rabbitmq")
            self.node.start()
            self.started_node = True
        self.admin_password = secrets.token_hex(16)
        self.passwords = {pid: secrets.token_hex(16) for pid in self.sut_ids}
        # Private queue names, as `sgx broker setup` gives them: a system must read the queue its configuration
        # names, not one it works out from its participant id.
        self.queue_names = {delivery_queue(pid): private_queue_name(pid) for pid in self.sut_ids}
        # One import for every user, the virtual host and the permissions: each rabbitmqctl call starts an Erlang
        # VM (most of a second), so one call instead of a dozen. Users that exist get these passwords.
        users = {ADMIN_USER: self.admin_password, **self.passwords}
        permissions = [(ADMIN_USER, (".*", ".*", ".*"))] + [
            (pid, permissions_for(pid, self.queue_names[delivery_queue(pid)])) for pid in self.sut_ids]
        definitions = {
            "users": [{"name": u, "password_hash": _password_hash(p), "tags": [],
                       "hashing_algorithm": "rabbit_password_hashing_sha256"} for u, p in users.items()],
            "vhosts": [{"name": self.vhost}],
            "permissions": [{"user": u, "vhost": self.vhost, "configure": c, "write": w, "read": r}
                            for u, (c, w, r) in permissions]}
        file = self.work / "broker-definitions.json"
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(definitions))
        self.node.ctl("import_definitions", str(file))
        file.unlink()
        self.admin = RabbitTransport(self.url(ADMIN_USER, self.admin_password), publish_attempts=2,
                                     retry_delay=0.2, queue_names=self.queue_names)
        deadline = time.monotonic() + 10  # the import is applied asynchronously
        while True:
            try:
                self._declare_ingress()
                break
            except TransportUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for pid in self.sut_ids:
            self.admin.declare(delivery_queue(pid))

    def _declare_ingress(self) -> None:
        """The ingress as a classic queue (the kit's own: a quorum queue cannot dead-letter what it refuses), and
        the queue where publishes refused while `refuse_publishes` is on are put for the kit to count."""
        channel = self.admin._channel()
        for exchange, queue in ((INGRESS_EXCHANGE, INGRESS), (REFUSED_EXCHANGE, REFUSED)):
            channel.exchange_declare(exchange, exchange_type="direct", durable=True)
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, exchange, routing_key=INGRESS)

    def url(self, user: str, password: str) -> str:
        return self.node.url(user, password, self.vhost.replace("/", "%2F"))

    def _make_directory(self, sut_public) -> None:
        now = datetime.now(UTC)
        d = self.directory
        d.add(Participant("router", OPERATOR, "Safeguarding Exchange router (played by the conformance kit)"))
        self.keys["router"] = SigningKey.generate("router-conformance")
        d.add_key("router", self.keys["router"], valid_from=now - timedelta(hours=1))
        for sender in self.senders:
            if sender in self.sut_ids:
                continue
            d.add(Participant(sender, _kind(sender), f"{sender} (played by the conformance kit)"))
            self.keys[sender] = SigningKey.generate(f"{sender}-conformance")
            d.add_key(sender, self.keys[sender], valid_from=now - timedelta(hours=1))
            # A second key, revoked an hour ago: what it signs now must never be accepted.
            self.revoked[sender] = SigningKey.generate(f"{sender}-revoked")
            d.add_key(sender, self.revoked[sender], valid_from=now - timedelta(days=2))
            d.revoke_key(sender, self.revoked[sender].kid, at=now - timedelta(hours=1))
        for pid in self.sut_ids:
            if pid not in d.participants:
                d.add(Participant(pid, _kind(pid), "The system under test"))
            d.add_public_key(pid, self.sut_kid, sut_public, valid_from=now - timedelta(hours=1))
        self.operator = SigningKey.generate("conformance-directory-operator")
        self.directory_file.write_bytes(d.sign(self.operator, valid_for=timedelta(days=1)))
        self.operator_key_file.write_bytes(orjson.dumps(self.operator.public_jwk(), option=orjson.OPT_INDENT_2))

    @property
    def directory_file(self) -> Path:
        return self.work / "directory.json"

    @property
    def operator_key_file(self) -> Path:
        return self.work / "directory-operator.pub.jwk"

    def config(self, participant: str | None = None, **extra) -> dict:
        """What the SUT is told: which participant it is, where to connect, which queue is its own, where the
        directory and its trust anchor are, and a folder for its own state."""
        pid = participant or self.participant
        state = self.work / ("sut-state" if pid == self.participant else f"sut-state-{pid}")
        state.mkdir(exist_ok=True)
        return {"participant": pid, "kid": self.sut_kid, "amqp_url": self.url(pid, self.passwords[pid]),
                "queue": self.queue_names[delivery_queue(pid)], "publish_exchange": INGRESS_EXCHANGE,
                "publish_routing_key": INGRESS, "directory": str(self.directory_file),
                "directory_operator_key": str(self.operator_key_file), "state": str(state), **extra}

    def write_config(self, participant: str | None = None, **extra) -> Path:
        pid = participant or self.participant
        path = self.work / ("sut-config.json" if pid == self.participant else f"sut-config-{pid}.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the system's broker password
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(self.config(pid, **extra), option=orjson.OPT_INDENT_2))
        return path

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()
        if self.node is not None:
            if self.started_node:
                self.node.stop()
            else:
                with contextlib.suppress(SafeguardingExchangeError):
                    self.node.ctl("delete_vhost", self.vhost)

    def __enter__(self) -> PlayedExchange:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- playing the exchange ----------------------------------------------------------------------------
    def sign(self, body: bytes, sender: str, message_id: str, event: str, *, key: SigningKey | None = None) -> str:
        return signing.sign_message(body, key or self.keys[sender], sender=sender, message_id=message_id,
                                    event=event)

    def deliver(self, items: list[tuple[bytes, str, str, str]], *, roles: tuple[str, ...] = ("placing-la",)) -> None:
        """Publish (body, sender, message id, the sender's signature) to the SUT's queue as the router does:
        with the router's signed delivery note naming the SUT."""
        router = self.keys["router"]
        out = []
        for body, sender, message_id, signature in items:
            note = orjson.dumps({"recipient": self.participant, "roles": list(roles), "message_id": message_id,
                                 "routed_at": compose.timestamp(datetime.now(UTC))})
            note_signature = signing.sign(note, router, signing.SignedHeader(
                router.kid, "router", message_id, "delivery", int(datetime.now(UTC).timestamp()), DELIVERY_TYP))
            out.append((delivery_queue(self.participant), Envelope(message_id, body, {
                SIGNATURE: signature, SENDER: sender, DELIVERY: note.decode(), DELIVERY_SIGNATURE: note_signature})))
        self.admin.publish_many(out)

    def acknowledge(self, message_id: str, code: str, details: list | None = None, *,
                    recipient: str | None = None) -> None:
        """Tell the SUT, as the router does, what became of a message it sent."""
        router = self.keys["router"]
        ack = compose.acknowledgement(message_id, "router", code, details=details or ())
        body = orjson.dumps(ack)
        ack_id = ack["identifier"]["value"]
        signature = signing.sign_message(body, router, sender="router", message_id=ack_id, event="acknowledgement")
        self.admin.publish(delivery_queue(recipient or self.participant),
                           Envelope(ack_id, body, {SIGNATURE: signature, SENDER: "router"}))

    def refuse_publishes(self, refuse: bool) -> None:
        """Make the broker refuse (nack) every publish to the ingress, as a full queue does, or stop doing so.
        What it refuses is put on a queue of the kit's (`refused`)."""
        if refuse:
            self.node.ctl("set_policy", "-p", self.vhost, "--apply-to", "queues", "--priority", "50",
                          "sgx-conformance-refuse", f"^{INGRESS}$", orjson.dumps({
                              "max-length": 0, "overflow": "reject-publish-dlx",
                              "dead-letter-exchange": REFUSED_EXCHANGE}).decode())
        else:
            self.node.ctl("clear_policy", "-p", self.vhost, "sgx-conformance-refuse")

    def refused(self, timeout: float) -> int:
        """How many publishes the broker refused (and the kit had not yet counted), waiting up to `timeout`."""
        count = 0
        while (delivery := self.admin.get(REFUSED, timeout=timeout if not count else 0)) is not None:
            delivery.ack()
            count += 1
        return count

    def connected(self, participant: str) -> bool:
        """Whether the participant has a connection open to the kit's virtual host."""
        return participant in self.node.ctl("list_connections", "--silent", "vhost", "user").replace(
            self.vhost, "").split()

    def take(self, timeout: float) -> Envelope | None:
        """The next message the SUT published to the ingress (taken off the queue), or None after `timeout`."""
        delivery = self.admin.get(INGRESS, timeout=timeout)
        if delivery is None:
            return None
        delivery.ack()
        return delivery.envelope



def _password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + SHA-256(salt + password)), a 4-byte salt."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()
