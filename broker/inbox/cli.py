"""`sgx inbox`: serve a participant's web inbox, and manage the people who sign in to it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from standard.errors import InboxError

DIR = click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                   show_default=True, help="The exchange folder.")
PARTICIPANT = click.option("--participant", required=True, help="Whose inbox, e.g. lado-371.")


def open_store(root: Path, participant: str):
    """The web inbox of a participant of the folder's directory (its id is checked before it names a file)."""
    from broker.exchange_folder import ExchangeFolder
    from broker.inbox.store import InboxStore

    if not (root / "directory.json").exists():
        raise click.UsageError(f"{root} is not an exchange folder (no directory.json); give the folder with --dir")
    folder = ExchangeFolder(root, warn=lambda line: click.echo(line, err=True))
    if participant not in folder.load_directory(read_only=True).participants:
        raise click.UsageError(f"{participant!r} is not a participant of the directory in {root}; see "
                               f"'sgx directory show --dir {root}'")
    (root / "inbox").mkdir(exist_ok=True)
    return InboxStore(root / "inbox" / f"{participant}.web.db", root / "inbox" / f"{participant}.db")


def open_responder(root: Path, participant: str, url: str | None):
    """What sends the inbox's acknowledgements, decisions and questions: the participant's outbox (signing with
    its key in the folder) and the exchange's transport (RabbitMQ at `url`, or the folder's embedded queues).
    None when the folder holds no key for the participant: the inbox then only reads."""
    from broker.exchange_folder import ExchangeFolder
    from broker.inbox.actions import Responder

    folder = ExchangeFolder(root, url)
    if not folder.has_key(participant):
        return None
    return Responder(folder.outbox(participant), lambda: ExchangeFolder(root, url).transport())


@click.group()
def inbox() -> None:
    """The web inbox where officers read what their organisation received."""


@inbox.command("add-user")
@DIR
@PARTICIPANT
@click.option("--email", required=True, help="The person's work email address: their sign-in name.")
@click.option("--name", required=True, help="Their name as colleagues know it.")
@click.option("--role", type=click.Choice(["officer", "manager", "administrator"]), default="officer",
              show_default=True, help="Managers and administrators can also read the access log.")
def add_user(root: Path, participant: str, email: str, name: str, role: str) -> None:
    """Give a person an account (the password is asked for, read from SGX_INBOX_PASSWORD, or from a pipe)."""
    from broker.inbox import users

    password = os.environ.get("SGX_INBOX_PASSWORD")
    if not password and not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")  # piped in by a script: nothing to hide, nobody to ask twice
        if not password:  # no terminal to ask on either
            raise click.UsageError("no password given: set SGX_INBOX_PASSWORD, pipe one in, or run this in a "
                                   "terminal to be asked")
    if not password:
        password = click.prompt("Password (at least 12 characters)", hide_input=True, confirmation_prompt=True)
    try:
        user = users.add_user(open_store(root, participant), email, name, role, password)
    except InboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"added {user.email} ({user.role}) to the inbox of {participant}")


@inbox.command()
@DIR
@PARTICIPANT
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535))
@click.option("--transport", "url", default=None,
              help="Where actions are sent: amqp://user:password@host:port/vhost; default: the folder's embedded "
                   "queues.")
def serve(root: Path, participant: str, host: str, port: int, url: str | None) -> None:
    """Serve the inbox until stopped (Ctrl-C). Put it behind the organisation's HTTPS proxy to reach it from
    other machines: its cookies are marked Secure, which browsers honour over plain HTTP only on this machine."""
    from waitress import create_server

    from broker.inbox.app import ASSETS, create_app, secret_key

    store = open_store(root, participant)
    if store.db.execute("SELECT count(*) FROM users").fetchone()[0] == 0:
        click.echo(f"nobody can sign in yet: add a person first with\n  sgx inbox add-user --dir {root} "
                   f"--participant {participant} --email you@example.org --name 'Your Name' --role manager",
                   err=True)
        sys.exit(2)
    if not ASSETS.is_dir():
        click.echo("note: GOV.UK Frontend is not installed, so pages will have no styles; run scripts/setup "
                   "(it needs npm)", err=True)
    from broker.exchange_folder import ExchangeFolder

    folder = ExchangeFolder(root, warn=lambda line: click.echo(line, err=True))
    names = {pid: p.name for pid, p in folder.load_directory(read_only=True).participants.items()}
    responder = open_responder(root, participant, url)
    if responder is None:
        click.echo(f"note: no key for {participant} in {folder.keys_dir}, so the inbox can read but not acknowledge "
                   "or answer", err=True)
    try:
        app = create_app(store, participant, key=secret_key(root, participant), names=names, responder=responder)
        try:
            server = create_server(app, host=host, port=port, threads=8, ident="sgx-inbox")
        except OSError as exc:
            click.echo(f"error: cannot listen on {host}:{port} ({exc.strerror}); choose another port with --port",
                       err=True)
            sys.exit(2)
        click.echo(f"inbox of {participant}: http://{host}:{port}/ (Ctrl-C to stop)")
        try:
            server.run()
        except KeyboardInterrupt:
            click.echo("stopped")
    finally:
        if responder is not None:
            responder.close()  # lets a send in progress finish; what is left waits for the next start
