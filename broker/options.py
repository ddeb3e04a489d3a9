"""The command-line options every command on an exchange folder shares (the exchange's, the adapters', the web
inbox's), defined once so they read and behave the same everywhere."""

from __future__ import annotations

from pathlib import Path

import click

DIR_OPTION = click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                          show_default=True, help="The exchange folder.")
TRANSPORT_OPTION = click.option("--transport", "url", default=None,
                                help="amqp://user:password@host:port/vhost (amqps://...?cafile=ca.pem for TLS); "
                                     "default: the folder's embedded queues.")
