"""The exchange the sender and receiver kits play towards a system under test (SUT): a RabbitMQ virtual host of
its own, the exchange's topology, a broker user for the SUT with a participant's least privilege, and a signed
directory holding the SUT's public key (the vendor keeps its private key), the keys of the senders the kit
signs as and of the router whose delivery notes the kit writes.

The RabbitMQ node is one the kit starts itself in its work folder, or one the vendor names (a node started by
`sgx broker dev-server`, attached through its folder). Each run gets its own virtual host, removed at the end.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from broker import signing
from broker.directory import LA, LADO, OFSTED, OPERATOR, POLICE, PROVIDER, Directory, Participant
from broker.keys import SigningKey, jwk_thumbprint, read_public_key
from broker.rabbitmq.server import RabbitNode
from broker.rabbitmq.setup import permissions_for
from broker.router import DELIVERY, DELIVERY_SIGNATURE, DELIVERY_TYP, SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, delivery_queue
from broker.transport.rabbitmq import INGRESS_EXCHANGE, RabbitTransport
from sgx.errors import ConformanceError, SafeguardingExchangeError
from standard import compose

ADMIN_USER = "sgx-conformance"
# The kind of participant a sender's id names (the directory needs one; the SUT only needs the keys).
_KINDS = (("la-", LA), ("lado-", LADO), ("provider-", PROVIDER), ("police-", POLICE), ("ofsted", OFSTED))


def _kind(participant_id: str) -> str:
    return next((kind for prefix, kind in _KINDS if participant_id.startswith(prefix)), OPERATOR)


class PlayedExchange:
    """Start with `open()`, end with `close()` (or use it as a context manager)."""

    def __init__(self, work: Path, sut_participant: str, sut_public_key: Path, senders: list[str], *,
                 rabbit_dir: Path | None = None, node: RabbitNode | None = None):
        self.work, self.participant = work, sut_participant
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
        node = self.node
        self.admin_password = secrets.token_hex(16)
        self.sut_password = secrets.token_hex(16)
        users = set(node.ctl("list_users", "--silent").split())
        for user, password in ((ADMIN_USER, self.admin_password), (self.participant, self.sut_password)):
            node.ctl("change_password" if user in users else "add_user", user, password)
        node.ctl("add_vhost", self.vhost)
        node.ctl("set_permissions", "-p", self.vhost, ADMIN_USER, ".*", ".*", ".*")
        node.ctl("set_permissions", "-p", self.vhost, self.participant, *permissions_for(self.participant))
        self.admin = RabbitTransport(self.url(ADMIN_USER, self.admin_password), publish_attempts=2,
                                     retry_delay=0.2)
        self.admin.declare(INGRESS)
        self.admin.declare(delivery_queue(self.participant))

    def url(self, user: str, password: str) -> str:
        return self.node.url(user, password, self.vhost.replace("/", "%2F"))

    def _make_directory(self, sut_public) -> None:
        now = datetime.now(UTC)
        d = self.directory
        d.add(Participant("router", OPERATOR, "Safeguarding Exchange router (played by the conformance kit)"))
        self.keys["router"] = SigningKey.generate("router-conformance")
        d.add_key("router", self.keys["router"], valid_from=now - timedelta(hours=1))
        for sender in self.senders:
            if sender == self.participant:
                continue
            d.add(Participant(sender, _kind(sender), f"{sender} (played by the conformance kit)"))
            self.keys[sender] = SigningKey.generate(f"{sender}-conformance")
            d.add_key(sender, self.keys[sender], valid_from=now - timedelta(hours=1))
            # A second key, revoked an hour ago: what it signs now must never be accepted.
            self.revoked[sender] = SigningKey.generate(f"{sender}-revoked")
            d.add_key(sender, self.revoked[sender], valid_from=now - timedelta(days=2))
            d.revoke_key(sender, self.revoked[sender].kid, at=now - timedelta(hours=1))
        if self.participant not in d.participants:
            d.add(Participant(self.participant, _kind(self.participant), "The system under test"))
        d.add_public_key(self.participant, self.sut_kid, sut_public, valid_from=now - timedelta(hours=1))
        self.operator = SigningKey.generate("conformance-directory-operator")
        self.directory_file.write_bytes(d.sign(self.operator, valid_for=timedelta(days=1)))
        self.operator_key_file.write_bytes(orjson.dumps(self.operator.public_jwk(), option=orjson.OPT_INDENT_2))

    @property
    def directory_file(self) -> Path:
        return self.work / "directory.json"

    @property
    def operator_key_file(self) -> Path:
        return self.work / "directory-operator.pub.jwk"

    def config(self, **extra) -> dict:
        """What the SUT is told: where to connect, which queue is its own, where the directory and its trust
        anchor are, and a folder for its own state."""
        state = self.work / "sut-state"
        state.mkdir(exist_ok=True)
        return {"participant": self.participant, "kid": self.sut_kid,
                "amqp_url": self.url(self.participant, self.sut_password),
                "queue": delivery_queue(self.participant), "publish_exchange": INGRESS_EXCHANGE,
                "publish_routing_key": INGRESS, "directory": str(self.directory_file),
                "directory_operator_key": str(self.operator_key_file), "state": str(state), **extra}

    def write_config(self, **extra) -> Path:
        path = self.work / "sut-config.json"
        path.write_bytes(orjson.dumps(self.config(**extra), option=orjson.OPT_INDENT_2))
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

    def acknowledge(self, message_id: str, code: str, details: list | None = None) -> None:
        """Tell the SUT, as the router does, what became of a message it sent."""
        router = self.keys["router"]
        ack = compose.acknowledgement(message_id, "router", code, details=details or ())
        body = orjson.dumps(ack)
        ack_id = ack["identifier"]["value"]
        signature = signing.sign_message(body, router, sender="router", message_id=ack_id, event="acknowledgement")
        self.admin.publish(delivery_queue(self.participant),
                           Envelope(ack_id, body, {SIGNATURE: signature, SENDER: "router"}))

    def take(self, timeout: float) -> Envelope | None:
        """The next message the SUT published to the ingress (taken off the queue), or None after `timeout`."""
        delivery = self.admin.get(INGRESS, timeout=timeout)
        if delivery is None:
            return None
        delivery.ack()
        return delivery.envelope

