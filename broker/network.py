"""A whole exchange in one folder: operator and participant keys, a signed directory, the router's
state and one inbox per node. The demo and the tests build networks with it; a deployment keeps
the same layout on separate machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import orjson

from broker import directory as d
from broker.keys import SigningKey, key_files, public_key_from_jwk
from broker.node import Node
from broker.outbox import Outbox
from broker.router import Router
from broker.transport import Transport, capabilities_of, exchange_transport, with_credentials


@dataclass
class Network:
    root: Path
    transport_url: str
    directory: d.Directory
    operator_key: SigningKey
    keys: dict[str, SigningKey] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # broker passwords, RabbitMQ only

    @classmethod
    def create(cls, root: Path, participants: list[d.Participant], settings: list[d.Setting], *,
               transport_url: str | None = None, keyed: list[str] | None = None) -> Network:
        """A network with the reference directory plus `participants` and `settings`; keys for `keyed`
        (default: every participant added, every participant a setting names, and the router)."""
        root.mkdir(parents=True, exist_ok=True)
        directory = d.reference_directory()
        for p in participants:
            directory.add(p)
        for s in settings:
            directory.add_setting(s)
        operator = SigningKey.generate("operator-1")
        operator.save(root / "keys" / "operator.key")
        (root / "operator.pub.jwk").write_bytes(orjson.dumps(operator.public_jwk()))
        net = cls(root, transport_url or str(root / "queues.db"), directory, operator)
        wanted = set(keyed or []) or {p.id for p in participants} | {"router"} | {
            pid for s in settings for pid in [s.host_la, s.host_icb, s.provider, *s.regulators,
                                              directory.lado_of(s.host_la)] if pid}
        for pid in sorted(wanted):
            key = SigningKey.generate(f"{pid}-1")
            key.save(root / "keys" / f"{key.kid}.key")
            directory.add_key(pid, key)
            net.keys[pid] = key
        net.publish_directory()
        return net

    @classmethod
    def open(cls, root: Path, transport_url: str | None = None) -> Network:
        """A network created earlier in `root`: its signed directory (checked against the operator's key), every
        key and, on RabbitMQ, the broker passwords."""
        anchor = public_key_from_jwk(orjson.loads((root / "operator.pub.jwk").read_bytes()))
        net = cls(root, transport_url or str(root / "queues.db"), d.load(root / "directory.json", anchor),
                  SigningKey.load(root / "keys" / "operator.key"))
        for key_file in key_files(root / "keys"):  # oldest first: each participant ends with its newest key
            key = SigningKey.load(key_file)
            net.keys[key.kid.rsplit("-", 1)[0]] = key
        passwords = root / "keys" / "broker-passwords.json"
        if passwords.exists():
            net.credentials = orjson.loads(passwords.read_bytes())
        return net

    def publish_directory(self, *, valid_for: timedelta = timedelta(days=7)) -> Path:
        path = self.root / "directory.json"
        path.write_bytes(self.directory.sign(self.operator_key, valid_for=valid_for))
        self.directory = d.load(path, self.operator_key.public)
        return path

    def transport(self, as_participant: str | None = None) -> Transport:
        """A connection to the exchange. On RabbitMQ each participant connects as its own broker user
        (credentials from `sgx broker setup`); the embedded transport has no users. The URL keeps its
        scheme and query: an amqps:// exchange is reached over TLS by every participant."""
        url = self.transport_url
        if as_participant and capabilities_of(url).participant_users:
            url = with_credentials(url, as_participant, self.credentials[as_participant])
        return exchange_transport(url, self.directory.participants)

    def router(self, transport: Transport, *, now=None) -> Router:
        return Router.in_folder(self.root, self.directory, transport, self.keys["router"],
                                **({"now": now} if now else {}))

    def outbox(self, participant_id: str, **options) -> Outbox:
        """The participant's outbox in this folder; `options` go to Outbox (a validator, for instance)."""
        (self.root / "outbox").mkdir(exist_ok=True)
        return Outbox(self.root / "outbox" / f"{participant_id}.db", participant_id, self.keys[participant_id],
                      **options)

    def node(self, participant_id: str, transport: Transport) -> Node:
        (self.root / "inbox").mkdir(exist_ok=True)
        return Node(participant_id, self.directory, transport, self.root / "inbox" / f"{participant_id}.db")

