"""The `sgx` command: one group per package, and the one place where errors meet the user.

No traceback reaches a user: the project's own errors print as one line saying what to do (exit 1 for a message
that broke the standard, 2 for usage and set-up), Ctrl-C stops cleanly, and anything unexpected prints a short
message naming the file its details were written to.
"""

from __future__ import annotations

import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

import click

from adapters.cli import adapt
from adapters.settings_import import import_settings
from broker.cli import audit, broker, directory, node
from broker.inbox.cli import inbox
from broker.oversight.cli import oversight
from conformance.cli import conformance
from sgx import __version__
from sgx.demo import demo
from standard.cli import standard
from standard.errors import MessageInvalid, SafeguardingExchangeError

EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def crash_log(exc: BaseException) -> Path | None:
    """Write where an unexpected error happened (the exception's type and the code path, never its message,
    which may hold a value from an input) to a file of this user's; return it, or None if it cannot be written."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    frames = "".join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                     for f in traceback.extract_tb(exc.__traceback__))
    try:
        folder = base / "sgx" / "errors"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{os.getpid()}.log"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
            fh.write(f"sgx {__version__}, command: {' '.join(sys.argv[1:3])}\n{frames}{type(exc).__name__}\n")
    except OSError:
        return None
    return path


class GuardedGroup(click.Group):
    """Runs a command and turns whatever escapes it into a message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`| head`): the output was not wanted any more, which is no error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except MessageInvalid as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FINDINGS)
        except SafeguardingExchangeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except ConnectionError as exc:
            click.echo(f"error: a connection failed ({exc.strerror or type(exc).__name__}); check that the "
                       "broker or server is running and its address", err=True)
            ctx.exit(EXIT_USAGE)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or type(exc).__name__}{where}; check the path and its permissions",
                       err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as exc:  # noqa: BLE001 - the last guard: never a traceback on the user's screen
            path = crash_log(exc)
            where = f"where it happened is in {path}" if path else "it could not be written to a log file"
            click.echo(f"error: the command stopped on an unexpected {type(exc).__name__}; {where}; please report "
                       "it", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=GuardedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgx")
def cli() -> None:
    """Safeguarding Exchange: the standard, the exchange, adapters, the inbox and conformance.

    \b
    Examples:
      sgx standard validate examples/messages/*.json
      sgx standard build --check
      sgx standard docs --out site/
      sgx conformance run --kit messages --messages out/
      sgx demo
    """


directory.add_command(import_settings)  # the operator's command, reading provider lists with the adapters' reader
cli.add_command(standard)
cli.add_command(demo)
for group in (directory, broker, node, inbox, oversight, audit, adapt, conformance):
    cli.add_command(group)


def main() -> None:
    cli()
