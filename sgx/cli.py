"""The `sgx` command: one group per package, and the one place where errors meet the user.

No traceback reaches a user: the project's own errors print as one line saying what to do (exit 1 for a message
that broke the standard, 2 for usage and set-up), Ctrl-C stops cleanly, and anything unexpected prints a short
message naming the file its details were written to.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

import click

from adapters.cli import adapt
from broker.cli import audit, broker, directory, node
from broker.inbox.cli import inbox
from conformance.cli import conformance
from sgx import __version__
from sgx.demo import demo
from sgx.errors import MessageInvalid, SafeguardingExchangeError
from standard.cli import standard

EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def crash_log(exc: BaseException) -> Path:
    """Write an unexpected error's details where an operator can find them; return the file."""
    folder = Path(tempfile.gettempdir()) / "sgx-errors"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}.log"
    path.write_text(f"sgx {__version__}: {' '.join(sys.argv[1:2])}\n"
                    + "".join(traceback.format_exception(exc)), encoding="utf-8")
    path.chmod(0o600)
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
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(f"error: {exc.strerror or type(exc).__name__}{where}; check the path and its permissions",
                       err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as exc:  # noqa: BLE001 - the last guard: never a traceback on the user's screen
            path = crash_log(exc)
            click.echo(f"error: the command stopped on an unexpected {type(exc).__name__}; the details are in "
                       f"{path}; please report it with that file", err=True)
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


cli.add_command(standard)
cli.add_command(demo)
for group in (directory, broker, node, inbox, audit, adapt, conformance):
    cli.add_command(group)


def main() -> None:
    cli()
