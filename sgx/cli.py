"""The `sgx` command: one group per package."""

from __future__ import annotations

import click

from adapters.cli import adapt
from broker.cli import audit, broker, directory, node
from broker.inbox.cli import inbox
from conformance.cli import conformance
from sgx import __version__
from sgx.demo import demo
from standard.cli import standard


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgx")
def cli() -> None:
    """Safeguarding Exchange: the standard, the exchange, adapters and conformance.

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
