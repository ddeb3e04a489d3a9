"""`sgx directory`, `sgx broker`, `sgx node`, `sgx audit`: run the exchange from a folder.

The folder's layout, and every way into it, is `broker.exchange_folder.ExchangeFolder`; the commands here only
read options and print.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import click
import orjson

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from broker.keys import SigningKey
from broker.options import DIR_OPTION, TRANSPORT_OPTION
from broker.progress import PROGRESS_SECONDS


def exchange_folder(root: Path, url: str | None = None) -> ExchangeFolder:
    """The exchange folder a command was given, its warnings (an expiring directory) printed on stderr."""
    return ExchangeFolder(root, url, warn=lambda line: click.echo(line, err=True))


def load_signed(root: Path, *, read_only: bool = False) -> d.Directory:
    """The folder's signed directory (read-only: an expired one is shown with a warning)."""
    return exchange_folder(root).load_directory(read_only=read_only)


def participant_outbox(root: Path, pid: str, **options):
    """The participant's outbox in the folder (`ExchangeFolder.outbox`), for the commands of this package."""
    return exchange_folder(root).outbox(pid, **options)


@click.group()
def directory() -> None:
    """Build, sign, verify and show the participant directory."""


@directory.command()
@DIR_OPTION
def init(root: Path) -> None:
    """Start a directory with every English LA (and its LADO), every ICB, Ofsted and CQC; make the operator key."""
    root.mkdir(parents=True, exist_ok=True)
    if (root / "directory.draft.json").exists():
        raise click.ClickException(f"{root} already has a directory; edit it with the other commands")
    folder = exchange_folder(root)
    key = SigningKey.generate("operator-1")
    key.save(folder.operator_key_file)
    folder.anchor_file.write_bytes(orjson.dumps(key.public_jwk()))
    directory_ = d.reference_directory()
    d.save_draft(root, directory_)
    click.echo(f"directory started with {len(directory_.participants)} participants; operator key written to "
               f"{folder.operator_key_file} (mode 600)")


@directory.command("add-participant")
@DIR_OPTION
@click.option("--id", "pid", required=True, help="Participant id, e.g. provider-example-care.")
@click.option("--kind", required=True, type=click.Choice([d.LA, d.LADO, d.ICB, d.OFSTED, d.CQC, d.POLICE, d.PROVIDER]))
@click.option("--name", required=True)
def add_participant(root: Path, pid: str, kind: str, name: str) -> None:
    """Add a participant (providers and police forces; LAs, LADOs and ICBs come with init)."""
    directory_ = d.load_draft(root)
    if pid in directory_.participants:
        raise click.ClickException(f"participant {pid!r} already exists")
    directory_.add(d.Participant(pid, kind, name))
    d.save_draft(root, directory_)
    click.echo(f"added {pid}")


@directory.command()
@DIR_OPTION
@click.option("--participant", "pid", required=True)
@click.option("--valid-days", type=int, default=365, show_default=True)
def keygen(root: Path, pid: str, valid_days: int) -> None:
    """Make a signing key for a participant: the private key to keys/<id>.key (mode 600), the public key into
    the directory. Rotation: run again; the new kid is added and the old key stays to verify old messages."""
    from datetime import UTC, datetime

    directory_ = d.load_draft(root)
    try:
        participant = directory_.participant(pid)
    except d.DirectoryError as exc:  # a wrong argument: a usage error, like node run's
        raise click.UsageError(f"{exc}; add it with 'sgx directory add-participant' first") from None
    taken = {k.get("kid") for k in participant.keys}
    kid = next(f"{pid}-{n}" for n in range(len(participant.keys) + 1, len(participant.keys) + 2 + len(taken))
               if f"{pid}-{n}" not in taken)
    key = SigningKey.generate(kid)
    key.save(root / "keys" / f"{kid}.key")
    directory_.add_key(pid, key, valid_until=datetime.now(UTC) + timedelta(days=valid_days))
    d.save_draft(root, directory_)
    click.echo(f"key {kid} for {pid}: private key in {root / 'keys' / (kid + '.key')} (mode 600), public key in "
               f"{root / 'keys' / (kid + '.pub.jwk')}; sign the directory to publish")


def _moment(value: str | None, option: str):
    """An ISO 8601 date or date-time from an option; a time without an offset is UTC."""
    from datetime import UTC

    if value is None:
        return None
    try:
        moment = d.parse_time(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-04-01 or "
                                 "2026-04-01T09:00:00Z)", param_hint=option) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@directory.command("add-key")
@DIR_OPTION
@click.option("--participant", "pid", required=True, help="The participant the key belongs to.")
@click.option("--public-key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The participant's public key: a JWK (OKP, Ed25519) or a PEM public key. Never a private key.")
@click.option("--kid", default=None, help="Key id. Default: the JWK's kid, else the key's RFC 7638 thumbprint.")
@click.option("--not-before", default=None, help="Valid from (ISO 8601, UTC if no offset). Default: now.")
@click.option("--expires", default=None, help="Valid until (ISO 8601). Default: 365 days after --not-before.")
def add_key(root: Path, pid: str, key_file: Path, kid: str | None, not_before: str | None,
            expires: str | None) -> None:
    """Register a public key a participant generated itself (its private key never leaves it). Sign the
    directory to publish the key."""
    from datetime import UTC, datetime

    from broker.keys import KID_FORM, jwk_thumbprint, public_jwk, read_public_key

    valid_from, valid_until = _moment(not_before, "--not-before"), _moment(expires, "--expires")
    valid_until = valid_until or (valid_from or datetime.now(UTC)) + timedelta(days=365)
    if valid_from and valid_until <= valid_from:
        raise click.BadParameter("must be after --not-before", param_hint="--expires")
    if valid_until <= datetime.now(UTC):
        raise click.BadParameter("is in the past: the key could never be used", param_hint="--expires")
    try:
        data = key_file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{key_file}: cannot read the public key file ({exc.strerror})") from None
    directory_ = d.load_draft(root)
    try:
        public, jwk_kid = read_public_key(data, str(key_file))
        participant = directory_.participant(pid)
    except d.DirectoryError as exc:
        raise click.ClickException(str(exc)) from None
    if kid and jwk_kid and kid != jwk_kid:
        raise click.ClickException(f"{key_file}: the JWK's kid is {jwk_kid!r} but --kid says {kid!r}; give one "
                                   "of them")
    kid = kid or jwk_kid or jwk_thumbprint(public)
    if not KID_FORM.fullmatch(kid):
        raise click.ClickException(f"kid {kid!r} is not usable: 1 to 128 letters, digits and . _ : - , not "
                                   "starting with a dot; give another with --kid")
    if any(k.get("kid") == kid for k in participant.keys):
        raise click.ClickException(f"participant {pid!r} already has a key {kid!r}; give the new key another "
                                   "--kid (keys are never replaced: revoke the old one)")
    x = public_jwk(kid, public)["x"]
    for other in directory_.participants.values():
        for existing in other.keys:
            if existing.get("x") == x:
                raise click.ClickException(f"this public key is already registered for {other.id!r} as "
                                           f"{existing.get('kid')!r}; each participant needs a key of its own")
    directory_.add_public_key(pid, kid, public, valid_from=valid_from, valid_until=valid_until)
    d.save_draft(root, directory_)
    click.echo(f"key {kid} added for {pid}, valid until {valid_until.date().isoformat()}; the participant signs "
               f"with kid {kid!r}; run 'sgx directory sign' to publish")


@directory.command("migrate-keys")
@DIR_OPTION
def migrate_keys(root: Path) -> None:
    """Rewrite key files of the earlier form (a 'kid:' line before the PEM) as plain PKCS#8 PEM with the public
    JWK (and kid) beside each in <name>.pub.jwk. Files already plain are left alone."""
    from broker.keys import migrate_key_file

    migrated = []
    for path in sorted((root / "keys").glob("*.key")):
        try:
            if migrate_key_file(path):
                migrated.append(path.name)
        except d.DirectoryError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"migrated {len(migrated)} key file(s)" + (f": {', '.join(migrated)}" if migrated else ""))


@directory.command()
@DIR_OPTION
@click.option("--participant", "pid", required=True)
@click.option("--kid", required=True)
def revoke(root: Path, pid: str, kid: str) -> None:
    """Revoke a key from now on; sign the directory to publish the revocation."""
    directory_ = d.load_draft(root)
    directory_.revoke_key(pid, kid)
    d.save_draft(root, directory_)
    click.echo(f"revoked {kid}; run 'sgx directory sign --dir {root}' (running routers and nodes take it up within "
               f"{d.RECHECK_SECONDS} s) and, if {pid} must lose broker access too, 'sgx broker revoke --dir {root} "
               f"--participant {pid} --rabbitmq-dir RABBITMQ_DIR'")


@directory.command("add-setting")
@DIR_OPTION
@click.option("--urn", required=True, help="Ofsted URN (SC + 6 digits, or 7 digits).")
@click.option("--name", required=True)
@click.option("--type", "kind", default="childrens-home", show_default=True)
@click.option("--host-la", required=True, help="Participant id of the host LA, e.g. la-371.")
@click.option("--host-icb", default=None, help="Default: the ICB of the host LA.")
@click.option("--regulator", "regulators", multiple=True, default=["ofsted"], show_default=True)
@click.option("--provider", default=None)
def add_setting(root: Path, urn: str, name: str, kind: str, host_la: str, host_icb: str | None,
                regulators: tuple[str, ...], provider: str | None) -> None:
    """Add a setting with its host LA, host ICB, regulators and provider."""
    import re

    from standard.catalogue import OFSTED_URN_FORM

    if not re.fullmatch(OFSTED_URN_FORM, urn):
        raise click.BadParameter("an Ofsted URN is SC followed by 6 digits, or 7 digits", param_hint="--urn")
    directory_ = d.load_draft(root)
    if host_icb is None:
        host_icb = directory_.default_icb(host_la)
    directory_.add_setting(d.Setting(urn, name, kind, host_la, host_icb, list(regulators), provider))
    d.save_draft(root, directory_)
    click.echo(f"added setting {urn} (host {host_la}, {host_icb or 'no ICB found: add --host-icb'})")


@directory.command()
@DIR_OPTION
@click.option("--valid-days", type=int, default=7, show_default=True, help="Expiry: a stale directory is refused.")
def sign(root: Path, valid_days: int) -> None:
    """Sign the draft with the operator key into directory.json."""
    if valid_days < 1:
        raise click.UsageError("--valid-days must be 1 or more: a directory signed already expired would stop "
                               "the exchange")
    folder = exchange_folder(root)
    folder.operator_key  # noqa: B018 - refused before anything changes when this folder is not the operator's
    directory_ = d.load_draft(root)
    directory_.version += 1
    folder.sign_directory(directory_, valid_for=timedelta(days=valid_days))
    d.save_draft(root, directory_)
    click.echo(f"signed directory version {directory_.version}, expires {directory_.expires_at}")


@directory.command()
@DIR_OPTION
def verify(root: Path) -> None:
    """Check directory.json against the operator's key and its expiry (exit 1 when it must not be used)."""
    try:
        loaded = load_signed(root)
    except d.DirectoryError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    click.echo(f"valid: version {loaded.version}, {len(loaded.participants)} participants, "
               f"{len(loaded.settings)} settings, expires {loaded.expires_at}")


@directory.command()
@DIR_OPTION
def show(root: Path) -> None:
    """Summarise the signed directory: participants with keys, and settings. Never shows private keys."""
    loaded = load_signed(root, read_only=True)
    click.echo(f"version {loaded.version}, issued {loaded.issued_at}, expires {loaded.expires_at}")
    for p in sorted(loaded.participants.values(), key=lambda p: p.id):
        if p.keys:
            kids = ", ".join(k["kid"] + (" (revoked)" if k.get("revoked_at") else "") for k in p.keys)
            click.echo(f"  {p.id:28} {p.kind:22} {p.name}  keys: {kids}")
        for c in p.certificates:
            click.echo(f"  {p.id:28} runs {c['system']} {c['version']}: certified ({c['kit']} kit, standard "
                       f"{c['standard']}) until {c['expires_at']}")
    for s in loaded.settings.values():
        click.echo(f"  setting {s.urn} {s.name}: host {s.host_la}, {s.host_icb}, regulators "
                   f"{','.join(s.regulators)}, provider {s.provider}")


@click.group()
def broker() -> None:
    """Run the router, set up RabbitMQ, run a local RabbitMQ for development."""


def _single_router(root: Path):
    """An exclusive lock on the folder's router: the routers of one process share claims on message ids; a
    second process would not, so it is refused."""
    import fcntl

    handle = open(root / "router.lock", "w")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise click.ClickException(f"a router is already running for {root}; use --workers to run more "
                                   "routers in that process") from None
    return handle


def _state_file(root: Path) -> Path:

    path = ExchangeFolder(root).router_state_file
    if not path.exists():
        raise click.ClickException(f"{path} does not exist: no router has run in {root} yet")
    return path


ROUTER_PREFETCH = 20  # peak memory about 60 MiB + 2 x prefetch x 5 MiB per router at worst (docs/operations.md)


PROGRESS_OPTION = click.option("--progress-every", "progress_seconds", type=click.FloatRange(min=0),
                               default=PROGRESS_SECONDS,
                               show_default=True, help="Seconds between progress lines on stderr (counts so far and "
                                                       "the queue's depth); 0: none.")


@broker.command()
@DIR_OPTION
@TRANSPORT_OPTION
@click.option("--once", is_flag=True, help="Route what is waiting, then stop.")
@click.option("--workers", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Routers side by side in this process, as competing consumers of the ingress queue.")
@click.option("--prefetch", type=click.IntRange(1, 1000), default=ROUTER_PREFETCH, show_default=True,
              help="Messages RabbitMQ hands each router ahead; with 5 MiB messages the router's memory peaks near "
                   "60 MiB + 2 x prefetch x 5 MiB (docs/operations.md).")
@click.option("--give-up-after", type=click.IntRange(0), default=3600, show_default=True,
              help="Seconds without the broker after which the router stops with exit code 1 (it reconnects "
                   "until then).")
@PROGRESS_OPTION
def route(root: Path, url: str | None, once: bool, workers: int, prefetch: int, give_up_after: int,
          progress_seconds: float) -> None:
    """Run the router: verify, validate, deduplicate, authorise, resolve, deliver, audit, acknowledge.

    Exit codes: 0 stopped after routing what was waiting (--once); 1 the router stopped on an error (the reason
    is printed on one line)."""
    from broker import progress
    from broker.router import Claims, run_side_by_side
    from standard.errors import SafeguardingExchangeError

    folder = exchange_folder(root, url)
    _load_or_exit(folder)
    if not folder.has_key("router"):
        raise click.ClickException("no router key; run 'sgx directory keygen --participant router' and sign")
    lock = _single_router(root)  # noqa: F841 - held for the life of the process
    claims = Claims()
    routers = [folder.router(folder.transport(prefetch=prefetch), claims=claims) for _ in range(workers)]
    line = progress.routing(folder.router_state_file, lambda: exchange_folder(root, url).transport())
    try:
        with _stoppable() as stop:  # handlers first, then the announcement: a signal after it must stop cleanly
            if not once:
                click.echo(f"routing for {root} with {workers} router(s), {prefetch} messages at a time; Ctrl-C or "
                           "SIGTERM stops after the batch in hand", err=True)
            with progress.every(progress_seconds, line, lambda text: click.echo(text, err=True)):
                count = run_side_by_side(routers, idle_timeout=0 if once else None, batch_size=prefetch,
                                         give_up_after=give_up_after, should_stop=stop.is_set)
    except d.DirectoryError as exc:
        click.echo(f"stopped routing: {exc}; messages wait in the ingress queue", err=True)
        sys.exit(1)
    except SafeguardingExchangeError as exc:  # the broker gone for longer than --give-up-after: one line, exit 1
        raise click.ClickException(f"the router stopped: {exc}") from None
    finally:
        checkpoint = routers[0].checkpoints.sign_now(routers[0].audit) if routers[0].checkpoints else None
    head = f"audit head {checkpoint['hash']} (record {checkpoint['seq']}, signed)" if checkpoint else "no audit records"
    click.echo(f"routed {count} message(s); {head}")


@contextlib.contextmanager
def _stoppable() -> Iterator[threading.Event]:
    """A flag that Ctrl-C and SIGTERM set, so a long-running command finishes what it holds and stops cleanly
    (a service manager stops it with SIGTERM) instead of dying mid-batch."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _load_or_exit(folder: ExchangeFolder) -> d.Directory:
    try:
        return folder.load_directory()
    except d.DirectoryError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)


@broker.command()
@DIR_OPTION
@click.option("--rabbitmq-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of the RabbitMQ node (for rabbitmqctl).")
@click.option("--admin-url", required=True, help="amqp:// URL of an administrator.")
@click.option("--delivery-limit", type=int, default=5, show_default=True)
def setup(root: Path, rabbitmq_dir: Path, admin_url: str, delivery_limit: int) -> None:
    """Create exchanges, quorum queues, dead-letter policy, and one user per participant with anchored
    permissions; passwords go to keys/broker-passwords.json (mode 600)."""
    from broker.rabbitmq.server import RabbitNode
    from broker.rabbitmq.setup import setup as run_setup

    folder = exchange_folder(root)
    passwords = run_setup(RabbitNode.attach(rabbitmq_dir).ctl, admin_url, folder.load_directory(),
                          folder.credentials_file, delivery_limit=delivery_limit)
    click.echo(f"set up {len(passwords)} broker users; passwords in {folder.credentials_file} and private queue "
               f"names in {folder.queue_names_file} (give each participant its own)")


@broker.command("revoke")
@DIR_OPTION
@click.option("--participant", "pid", required=True)
@click.option("--rabbitmq-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of the RabbitMQ node (for rabbitmqctl); without it, the folder's embedded transport.")
@click.option("--vhost", default="/", show_default=True, help="The RabbitMQ virtual host of the exchange.")
def broker_revoke(root: Path, pid: str, rabbitmq_dir: Path | None, vhost: str) -> None:
    """Cut a participant off the broker now: on RabbitMQ its permissions are cleared and its open connections
    closed. Its keys are revoked separately ('sgx directory revoke', then sign): that is what makes the router
    refuse what it signed, including messages already queued."""
    directory_ = load_signed(root)
    participant = directory_.participants.get(pid)
    if participant is None:
        raise click.ClickException(f"participant {pid!r} is not in the signed directory of {root}")
    live = [k["kid"] for k in participant.keys if not k.get("revoked_at")]
    if rabbitmq_dir is not None:
        from broker.rabbitmq.server import RabbitNode
        from broker.rabbitmq.setup import revoke as revoke_on_broker

        closed = revoke_on_broker(RabbitNode.attach(rabbitmq_dir).ctl, pid, vhost)
        click.echo(f"{pid}: RabbitMQ permissions cleared and {closed} open connection(s) closed; it can neither "
                   "publish nor read until 'sgx broker setup' is run for it again")
    else:
        click.echo(f"{pid}: the embedded transport has no broker users or connections, so nothing was closed; "
                   "on one machine access is the folder's file permissions")
    if live:
        click.echo(f"{pid} still has unrevoked keys in the signed directory ({', '.join(live)}): the router "
                   f"accepts what they sign; run 'sgx directory revoke --dir {root} --participant {pid} --kid KID' "
                   "and 'sgx directory sign'", err=True)
    else:
        click.echo(f"{pid}: every key is revoked in directory version {directory_.version}; routers refuse its "
                   "messages, queued ones included")


@broker.command("dev-server")
@click.option("--dir", "base", type=click.Path(file_okay=False, path_type=Path), required=True)
def dev_server(base: Path) -> None:
    """Run a RabbitMQ node on loopback with its data in DIR, until interrupted. Needs rabbitmq-server (apt)."""
    import secrets

    from broker.rabbitmq.server import RabbitNode

    node = RabbitNode(base)
    node.start()
    password = secrets.token_hex(16)
    node.ctl("add_user", "sgx-admin", password)
    node.ctl("set_user_tags", "sgx-admin", "administrator")
    node.ctl("set_permissions", "-p", "/", "sgx-admin", ".*", ".*", ".*")
    url_file = base / "admin-url"
    url_file.write_text(node.url("sgx-admin", password))
    url_file.chmod(0o600)
    try:
        with _stoppable() as stop:  # handlers first, then the announcement: a signal after it must stop cleanly
            click.echo(f"RabbitMQ running on 127.0.0.1:{node.port}; administrator URL in {url_file}. Ctrl-C or "
                       "SIGTERM stops it (and its epmd).")
            while node.process and node.process.poll() is None and not stop.wait(1):
                pass
    finally:
        node.stop()
        click.echo("RabbitMQ stopped", err=True)


@click.group()
def node() -> None:
    """A participant's receiving node."""


@node.command("run")
@DIR_OPTION
@TRANSPORT_OPTION
@click.option("--participant", "pid", required=True)
@click.option("--once", is_flag=True, help="Receive what is waiting, then stop.")
@PROGRESS_OPTION
@click.option("--receipts/--no-receipts", default=True, show_default=True,
              help="Tell each sender its message reached this node (when the folder holds this participant's key).")
def node_run(root: Path, url: str | None, pid: str, once: bool, progress_seconds: float, receipts: bool) -> None:
    """Receive this participant's messages: verify, store once, then acknowledge to the transport."""
    from broker import progress
    from broker.receipts import DeliveryReceipts

    folder = exchange_folder(root, url)
    _require_participant(folder, pid)
    receiver = folder.node(pid, folder.transport())
    tally = progress.ReceivingTally(receiver, lambda: exchange_folder(root, url).transport())
    told = DeliveryReceipts(receiver.db, folder.outbox(pid), lambda: exchange_folder(root, url).transport()) \
        if receipts and folder.has_key(pid) else None
    with _stoppable() as stop:  # handlers first, then the announcement: a signal after it must stop cleanly
        if not once:
            click.echo(f"receiving for {pid} into {folder.inbox_file(pid)}; Ctrl-C or SIGTERM stops after "
                       "the batch in hand", err=True)
        with progress.every(progress_seconds, tally.line, lambda text: click.echo(text, err=True)):
            count = receiver.run(idle_timeout=0 if once else None, should_stop=stop.is_set,
                                 after_batch=told.send if told else None)
    answered = _record_acknowledgements(folder, pid, receiver)
    not_stored = receiver.taken - count
    click.echo(f"received {count} message(s)"
               + (f"; {not_stored} not stored (refused or handed back: see the log; their senders are told)"
                  if not_stored else "") + (f"; {answered} answer(s) to sent messages" if answered else ""))


def _record_acknowledgements(folder: ExchangeFolder, pid: str, receiver) -> int:
    """Give the participant's outbox (if it has one) the exchange's acknowledgements from its inbox."""
    if not folder.has_outbox(pid):
        return 0
    return folder.outbox(pid).record_acknowledgements(receiver)


def _drain(folder: ExchangeFolder, outbox) -> int:
    """Send what waits in the outbox; a refusal by the broker (permissions, size) is one line, not a traceback."""
    from standard.errors import UnrecoverableBrokerError

    transport = folder.transport()  # a directory that cannot be used is refused as such, before this
    try:
        return outbox.drain(transport)
    except UnrecoverableBrokerError as exc:
        raise click.ClickException(f"the exchange refused the messages, which stay in the outbox: {exc}") from None


@node.command()
@DIR_OPTION
@click.option("--participant", "pid", required=True)
@click.argument("message_id")
def status(root: Path, pid: str, message_id: str) -> None:
    """Show a sent message's state in the outbox (queued, sent, accepted, duplicate, refused, failed) and, for each
    recipient, what happened to it: accepted by the exchange (or failed and why), delivered to the recipient's node,
    read by a person, acknowledged, decided, with times; OVERDUE when not acknowledged by the event's deadline.

    Exit codes: 0 shown; 1 the message is not in this participant's outbox."""
    from broker.outbox import STEPS, Outbox

    folder = exchange_folder(root)
    _require_participant(folder, pid, read_only=True)
    if not folder.outbox_file(pid).exists():
        raise click.ClickException(f"{pid} has sent nothing from {root} (it has no outbox there); give the --dir "
                                   "its messages were sent from")
    outbox = Outbox(folder.outbox_file(pid), pid, None)  # reading what was sent needs no signing key
    if folder.inbox_file(pid).exists():
        receiver = folder.node(pid)
        outbox.record_acknowledgements(receiver)
        outbox.record_responses(receiver)
    wanted = message_id if message_id.startswith("urn:uuid:") else f"urn:uuid:{message_id}"
    found = outbox.status(wanted)
    if found is None:
        raise click.ClickException(f"{wanted} is not in the outbox of {pid}")
    click.echo(f"{found.message_id}  {found.event}  {found.state}" + (f" ({found.reason})" if found.reason else "")
               + (f"  sent {_utc(found.sent_at)}" if found.sent_at else ""))
    for state in outbox.accountable(wanted):
        outcome, detail = found.outcomes.get(state.recipient, (None, None))
        click.echo(f"  {state.recipient:28} {state.latest.upper() if state.overdue else state.latest}"
                   + ("  OVERDUE" if state.overdue else "")
                   + (f"  {detail}" if outcome == "failed" and detail else ""))
        if state.accepted_at:
            click.echo(f"    {'accepted':13} {_utc(state.accepted_at)}")
        for step in STEPS:
            if step in state.steps:
                at, text = state.steps[step]
                click.echo(f"    {step:13} {_utc(at)}" + (f"  {text}" if text else ""))
        if state.due is not None and not {"acknowledged", "decided", "asked"} & set(state.steps):
            click.echo(f"    {'due by':13} {_utc(state.due)}")
    if found.state in ("refused", "failed"):
        click.echo(f"  fix the cause, then: sgx node resend --dir {root} --participant {pid} {found.message_id}")


def _require_participant(folder: ExchangeFolder, pid: str, *, read_only: bool = False) -> None:
    """A participant the folder's directory does not have is a usage error (exit 2), named with the folder."""
    if pid not in folder.load_directory(read_only=read_only).participants:
        raise click.UsageError(f"{pid!r} is not a participant of the directory in {folder.root}")


def _utc(moment) -> str:
    """One way to show a time to a person, whichever way it was stored: 2026-11-26 17:33:40 UTC."""
    if isinstance(moment, str):
        try:
            moment = d.parse_time(moment)
        except ValueError:
            return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@node.command()
@DIR_OPTION
@TRANSPORT_OPTION
@click.option("--participant", "pid", required=True)
@click.argument("message_ids", nargs=-1, required=True)
def resend(root: Path, url: str | None, pid: str, message_ids: tuple[str, ...]) -> None:
    """Send refused or failed messages again, signed afresh (after fixing what made the exchange refuse them).

    Exit codes: 0 all queued again; 1 some were not refused or failed messages of this outbox (listed)."""
    folder = exchange_folder(root, url)
    outbox = folder.outbox(pid)
    problems = 0
    for message_id in message_ids:
        wanted = message_id if message_id.startswith("urn:uuid:") else f"urn:uuid:{message_id}"
        if not outbox.resend(wanted):
            problems += 1
            click.echo(f"{wanted}: not resent: it is not a refused or failed message of {pid}", err=True)
    sent = _drain(folder, outbox)
    click.echo(f"sent {sent}; waiting in the outbox {outbox.pending()}")
    sys.exit(1 if problems else 0)


@node.command()
@DIR_OPTION
@TRANSPORT_OPTION
@click.option("--participant", "pid", required=True)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def send(root: Path, url: str | None, pid: str, files: tuple[Path, ...]) -> None:
    """Validate message files, put them in this participant's outbox, and send what the exchange will take."""
    from standard.errors import MessageInvalid

    folder = exchange_folder(root, url)
    outbox = folder.outbox(pid)
    refused = 0
    for file in files:
        try:
            outbox.add(file.read_bytes())
        except MessageInvalid as exc:
            refused += 1
            click.echo(f"{file}: not queued: {exc}", err=True)
    sent = _drain(folder, outbox)
    click.echo(f"sent {sent}; waiting in the outbox {outbox.pending()}; refused {refused}")
    sys.exit(1 if refused else 0)


@node.command()
@DIR_OPTION
@click.option("--participant", "pid", required=True)
def inbox(root: Path, pid: str) -> None:
    """List what has arrived (event, sender, time, verification); message content is not printed. Under each of the
    exchange's acknowledgements: the message it answers, its outcome (accepted, duplicate, delivery-failed, or the
    refusal's code) and the reasons (each recipient it went to, or why it was refused)."""
    from broker import acknowledgements

    folder = exchange_folder(root)
    _require_participant(folder, pid, read_only=True)
    if not folder.inbox_file(pid).exists():
        raise click.ClickException(f"no inbox for {pid} in {root} yet; run 'sgx node run --dir {root} --participant "
                                   f"{pid}'")
    receiver = folder.node(pid, directory=folder.load_directory(read_only=True))  # reading only
    for item in receiver.inbox():
        click.echo(f"{item.received_at}  {item.event:26} from {item.sender:24} {item.message_id}  {item.verified}")
        answer = acknowledgements.read(item.body) if item.event == "acknowledgement" else None
        if answer is not None:
            click.echo(f"    answers {answer.message_id}: {answer.outcome}")
            for reason in answer.reasons:
                click.echo(f"      {reason}")


@click.group()
def audit() -> None:
    """The routing audit log."""


@audit.command("verify")
@DIR_OPTION
@click.option("--expect-head", default=None, help="A head hash recorded earlier: catches a truncated log.")
@click.option("--checkpoint", "kept", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="A signed checkpoint kept elsewhere (from 'sgx audit checkpoint'); may be repeated.")
def audit_verify(root: Path, expect_head: str | None, kept: tuple[Path, ...]) -> None:
    """Check the hash chain and check it against the router's signed checkpoints (the folder's and any kept
    elsewhere); exit 1 if any record was edited, deleted, inserted or reordered, or the newest records were
    removed, or the chain was rewritten and re-hashed."""
    from broker.audit import AuditLog, Checkpoints, Problem, read_checkpoints, verify_checkpoints

    log = AuditLog(_state_file(root))
    problems = log.verify(expect_head=expect_head)
    folder = Checkpoints(root)
    checkpoints = folder.read() + [c for path in kept for c in read_checkpoints(path)]
    seq, head = log.last()
    if checkpoints:
        try:  # an expired directory still holds the router's keys that signed older checkpoints
            directory_ = ExchangeFolder(root).load_directory(read_only=True)
        except d.DirectoryError as exc:
            raise click.ClickException(f"cannot check the signed checkpoints: {exc}") from None
        problems += verify_checkpoints(log, checkpoints, directory_.public_key_for)
    elif seq:
        problems.append(Problem(seq, f"no signed checkpoint in {folder.path} (removed?): a log cut short or "
                                     "rewritten cannot be told from an intact one; verify against a copy with "
                                     "--checkpoint FILE"))
    published = folder.published_head()
    if published and (published.get("seq", 0) > seq or
                      (published.get("seq") and log.hash_at(published["seq"]) != published.get("hash"))):
        problems.append(Problem(published.get("seq", 0), f"the log does not hold the head published in "
                                                         f"{folder.head_path}: removed or rewritten records"))
    for p in problems:
        click.echo(f"record {p.seq}: {p.what}", err=True)
    if problems:
        sys.exit(1)
    newest = max((c.get("seq", 0) for c in checkpoints), default=0)
    click.echo(f"intact: {seq} records, head {head}; matches {len(checkpoints)} signed checkpoint(s) up to record "
               f"{newest}")


@audit.command("checkpoint")
@DIR_OPTION
def audit_checkpoint(root: Path) -> None:
    """Print the router's latest signed checkpoint of the audit head (JSON), to keep outside this folder; check the
    log against it later with 'sgx audit verify --checkpoint FILE'."""
    from broker.audit import Checkpoints

    latest = Checkpoints(root).latest()
    if latest is None:
        raise click.ClickException(f"no signed checkpoint in {root}: a router writes one after its first batch")
    click.echo(orjson.dumps(latest).decode())


@audit.command("show")
@DIR_OPTION
def audit_show(root: Path) -> None:
    """Print the decisions (ids, digests, codes; no personal data)."""
    from broker.audit import AuditLog

    for r in AuditLog(_state_file(root)).records():
        click.echo(f"{r['seq']:6} {r['time']} {r['decision']:13} {r['event'] or '-':26} {r['sender']:24} "
                   f"-> {','.join(r['recipients']) or '-'} {r['reason'] or ''}")
