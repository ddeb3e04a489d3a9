"""An exchange folder: the one public object through which the command line, the demo, the adapters, the web inbox
and the tests reach an exchange (its paths, its signed directory, its keys, a participant's outbox and inbox, the
router and the transport).

Layout (one per deployment; a participant's machine holds only its own key):
    directory.draft.json   the directory being edited (unsigned)
    directory.json         the signed directory everyone loads
    operator.pub.jwk       the operator's public key: the trust anchor
    keys/                  private keys as PKCS#8 PEM, mode 0600 (never printed); <name>.pub.jwk beside each
                           holds its public JWK and kid
    queues.db              the embedded transport (when no amqp:// URL is given)
    router.db              the router's state: seen ids, the register, the audit chain
    audit-head.json        the audit chain's newest record (seq, hash), replaced after every batch
    audit-checkpoints.jsonl  the audit head signed by the router at intervals, appended to (keep copies)
    adapter-state/<participant>.db  what each adapter has already sent
    inbox/<participant>.db outbox/<participant>.db

Nothing is read until it is asked for, so a participant's machine (its own key, the anchor and the signed
directory) opens the same way as the operator's folder or a whole exchange made for a demo or a test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import directory as d
from broker.keys import SigningKey, key_files, public_key_file, public_key_from_jwk
from standard.errors import DirectoryError, ExchangeFolderError

if TYPE_CHECKING:
    from broker.node import Node
    from broker.outbox import Outbox
    from broker.router import Router
    from broker.transport import Transport

EXPIRY_NOTICE = timedelta(days=7)  # at most; a quarter of the directory's validity when that is shorter


class ExchangeFolder:
    """One exchange folder. `transport_url` is the exchange's RabbitMQ (amqp:// or amqps://); without it, the
    folder's embedded queues. `warn` receives one line for each warning a caller should see (an expiring
    directory); by default warnings are not shown."""

    def __init__(self, root: Path, transport_url: str | None = None, *,
                 warn: Callable[[str], object] | None = None):
        self.root = Path(root)
        self.transport_url = transport_url
        self.warn = warn or (lambda _line: None)
        self.keys: dict[str, SigningKey] = {}  # signing keys by participant, as loaded or made
        self._directory: d.Directory | None = None
        self._operator_key: SigningKey | None = None
        self._credentials: dict[str, str] | None = None

    # Paths --------------------------------------------------------------------------------------------------

    @property
    def directory_file(self) -> Path:
        return self.root / "directory.json"

    @property
    def anchor_file(self) -> Path:
        return self.root / "operator.pub.jwk"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def queues_file(self) -> Path:
        return self.root / "queues.db"

    @property
    def operator_key_file(self) -> Path:
        return self.keys_dir / "operator.key"

    @property
    def credentials_file(self) -> Path:
        return self.keys_dir / "broker-passwords.json"

    @property
    def queue_names_file(self) -> Path:
        """Each delivery queue's private name on RabbitMQ (from `sgx broker setup`), beside the passwords."""
        return self.keys_dir / "broker-queues.json"

    @property
    def router_state_file(self) -> Path:
        from broker.router import STATE_FILE

        return self.root / STATE_FILE

    def inbox_file(self, participant_id: str) -> Path:
        return self.root / "inbox" / f"{participant_id}.db"

    def outbox_file(self, participant_id: str) -> Path:
        return self.root / "outbox" / f"{participant_id}.db"

    def adapter_state_file(self, participant_id: str) -> Path:
        return self.root / "adapter-state" / f"{participant_id}.db"

    # Making a whole exchange in one folder (the demo, the tests, a benchmark) ---------------------------------

    @classmethod
    def create(cls, root: Path, participants: list[d.Participant], settings: list[d.Setting], *,
               transport_url: str | None = None, keyed: list[str] | None = None) -> ExchangeFolder:
        """A new exchange with the reference directory plus `participants` and `settings`, its operator key and
        keys for `keyed` (default: every participant added, every participant a setting names, and the router),
        the directory signed for seven days."""
        folder = cls(root, transport_url)
        folder.root.mkdir(parents=True, exist_ok=True)
        directory = d.reference_directory()
        for p in participants:
            directory.add(p)
        for s in settings:
            directory.add_setting(s)
        operator = SigningKey.generate("operator-1")
        operator.save(folder.operator_key_file)
        folder.anchor_file.write_bytes(orjson.dumps(operator.public_jwk()))
        folder._operator_key = operator
        wanted = set(keyed or []) or {p.id for p in participants} | {"router"} | {
            pid for s in settings for pid in [s.host_la, s.host_icb, s.provider, *s.regulators,
                                              directory.lado_of(s.host_la)] if pid}
        for pid in sorted(wanted):
            key = SigningKey.generate(f"{pid}-1")
            key.save(folder.keys_dir / f"{key.kid}.key")
            directory.add_key(pid, key)
            folder.keys[pid] = key
        folder._directory = directory
        folder.publish_directory()
        return folder

    @classmethod
    def open(cls, root: Path, transport_url: str | None = None) -> ExchangeFolder:
        """A whole exchange made earlier in `root` (by `create`): its signed directory, checked against the
        operator's key, and every key in the folder."""
        folder = cls(root, transport_url)
        folder.directory  # noqa: B018 - loaded now, so a folder that cannot be trusted fails here
        for key_file in key_files(folder.keys_dir):  # oldest first: each participant ends with its newest key
            key = SigningKey.load(key_file)
            folder.keys[key.kid.rsplit("-", 1)[0]] = key
        return folder

    # The signed directory -----------------------------------------------------------------------------------

    def anchor(self) -> Ed25519PublicKey:
        """The operator's public key, which the directory must be signed with."""
        if not self.anchor_file.exists():
            raise DirectoryError(f"{self.anchor_file} is missing: the operator's public key is needed to trust the "
                                 f"directory; is {self.root} the exchange folder (--dir)?")
        try:
            return public_key_from_jwk(orjson.loads(self.anchor_file.read_bytes()))
        except (orjson.JSONDecodeError, DirectoryError):
            raise DirectoryError(f"{self.anchor_file} is not the operator's public key (a JWK); fetch it again from "
                                 "the operator") from None

    def load_directory(self, *, read_only: bool = False) -> d.Directory:
        """The signed directory, checked against the anchor, with a warning (to `warn`) a week before it expires.

        Args:
            read_only: for what only shows what is there (inbox, show, audit): an expired directory is still
                read, with a warning, since nothing is sent or routed on it. Sending and routing refuse it.

        Raises:
            DirectoryError: missing, forged, malformed, or (unless read_only) expired.
        """
        directory = d.load(self.directory_file, self.anchor(), allow_expired=read_only)
        notice = self.expiry_notice(directory)
        if notice:
            self.warn(notice)
        if not read_only:
            self._directory = directory
        return directory

    @property
    def directory(self) -> d.Directory:
        """The signed directory as sending and routing use it (an expired one is refused), loaded once."""
        if self._directory is None:
            self.load_directory()
        assert self._directory is not None
        return self._directory

    def expiry_notice(self, directory: d.Directory, now: datetime | None = None) -> str | None:
        """A warning when the directory has expired or expires within a week (never for most of a short
        validity: a weekly directory would always be "expiring"); None otherwise."""
        expires, issued = d.parse_time(directory.expires_at), d.parse_time(directory.issued_at)
        left = expires - (now or datetime.now(UTC))
        notice = min(EXPIRY_NOTICE, (expires - issued) / 4)
        resign = f"the operator signs a new one with 'sgx directory sign --dir {self.root}'"
        if left <= timedelta(0):
            return (f"warning: the directory expired at {directory.expires_at}; shown as it was; sending and routing "
                    f"refuse it until {resign}")
        if left <= notice:
            return (f"warning: the directory expires at {directory.expires_at}; sending and routing will stop then "
                    f"unless {resign}")
        return None

    @property
    def operator_key(self) -> SigningKey:
        """The operator's private key (only the operator's folder has it)."""
        if self._operator_key is None:
            path = self.operator_key_file
            if not path.exists():
                raise ExchangeFolderError(f"{path} is missing: only the operator's folder can sign the directory")
            self._operator_key = SigningKey.load(path)
        return self._operator_key

    def publish_directory(self, *, valid_for: timedelta = timedelta(days=7)) -> Path:
        """Sign the directory in hand again (after changing it) and publish it."""
        if self._directory is None:
            raise ExchangeFolderError("no directory in hand to publish")
        self.sign_directory(self._directory, valid_for=valid_for)
        return self.directory_file

    def sign_directory(self, directory: d.Directory, *, valid_for: timedelta) -> d.Directory:
        """Sign `directory` with the operator's key into directory.json, written beside and renamed into place
        (routers and nodes re-read the file while they run and must never see half of it); returns it as loaded."""
        partial = self.directory_file.with_name("directory.json.partial")
        partial.write_bytes(directory.sign(self.operator_key, valid_for=valid_for))
        os.replace(partial, self.directory_file)
        self._directory = d.load(self.directory_file, self.operator_key.public)
        return self._directory

    # Keys -----------------------------------------------------------------------------------------------------

    def has_key(self, participant_id: str) -> bool:
        """Whether the folder holds a signing key of the participant."""
        return participant_id in self.keys or bool(key_files(self.keys_dir, participant_id))

    def signing_key(self, participant_id: str) -> SigningKey:
        """The participant's newest signing key in the folder.

        Raises:
            ExchangeFolderError: the folder holds no key of the participant, saying how to make one.
        """
        if participant_id in self.keys:
            return self.keys[participant_id]
        found = key_files(self.keys_dir, participant_id)
        if not found:
            raise ExchangeFolderError(f"no key for {participant_id} in {self.keys_dir}; run 'sgx directory keygen "
                                      f"--dir {self.root} --participant {participant_id}' and sign the directory")
        key = SigningKey.load(found[-1])
        if not public_key_file(found[-1]).exists() and self.directory_file.exists():
            # A key file copied without its .pub.jwk: the directory knows the kid of its public key.
            key = key.named_as_registered(self.load_directory(read_only=True).participant(participant_id).keys)
        self.keys[participant_id] = key
        return key

    @property
    def credentials(self) -> dict[str, str]:
        """Each participant's RabbitMQ password (from `sgx broker setup`); empty for the embedded transport."""
        if self._credentials is None:
            path = self.credentials_file
            self._credentials = orjson.loads(path.read_bytes()) if path.exists() else {}
        return self._credentials

    @credentials.setter
    def credentials(self, value: dict[str, str]) -> None:
        self._credentials = value

    # The parts of an exchange ---------------------------------------------------------------------------------

    def transport(self, as_participant: str | None = None, **options) -> Transport:
        """A connection to the exchange. The embedded queues are declared for every participant of the
        directory. On RabbitMQ the queues come from `sgx broker setup`; with `as_participant` the participant
        connects as its own broker user (its password from the folder), otherwise as the URL's user. The URL
        keeps its scheme and query: an amqps:// exchange is reached over TLS by every participant. `options` go to
        the RabbitMQ transport (prefetch, for instance)."""
        from broker.transport import capabilities_of, exchange_transport, open_transport, with_credentials

        url = self.transport_url or str(self.queues_file)
        capabilities = capabilities_of(url)
        if capabilities.declares_queues:
            return exchange_transport(url, self.directory.participants)
        if as_participant and capabilities.participant_users:
            if as_participant not in self.credentials:
                raise ExchangeFolderError(f"no broker password for {as_participant} in {self.credentials_file}; run "
                                          f"'sgx broker setup --dir {self.root}'")
            url = with_credentials(url, as_participant, self.credentials[as_participant])
        from broker.rabbitmq.setup import load_queue_names

        # Read each time: setup may have run since this object was made.
        return open_transport(url, **({"queue_names": load_queue_names(self.queue_names_file)} | options))

    def outbox(self, participant_id: str, **options) -> Outbox:
        """The participant's durable outbox, signing with its newest key; `options` go to Outbox (a validator)."""
        from broker.outbox import Outbox

        key = self.signing_key(participant_id)
        path = self.outbox_file(participant_id)
        path.parent.mkdir(exist_ok=True)
        return Outbox(path, participant_id, key, **options)

    def has_outbox(self, participant_id: str) -> bool:
        return self.outbox_file(participant_id).exists() and self.has_key(participant_id)

    def node(self, participant_id: str, transport: Transport | None = None, *,
             directory: d.Directory | None = None) -> Node:
        """The participant's receiving node and its inbox. Without a transport it can only read what arrived;
        `directory` replaces the folder's (a read-only load, to show an inbox under an expired directory)."""
        from broker.node import Node

        path = self.inbox_file(participant_id)
        path.parent.mkdir(exist_ok=True)
        return Node(participant_id, directory or self.directory, transport, path)  # type: ignore[arg-type]

    def router(self, transport: Transport, **options) -> Router:
        """The folder's router with its newest key; `options` go to Router (claims, now; None means the default)."""
        from broker.router import Router

        options = {name: value for name, value in options.items() if value is not None}
        if not self.has_key("router"):
            raise ExchangeFolderError(f"no router key in {self.keys_dir}; run 'sgx directory keygen --dir {self.root} "
                                      "--participant router' and sign the directory")
        return Router.in_folder(self.root, self.directory, transport, self.signing_key("router"), **options)
