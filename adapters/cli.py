"""`sgx adapt`: turn legacy exports into standard messages in the sender's outbox."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click
import orjson

from adapters.base import Problem, Record
from adapters.placements import ChangeStore, plan_messages
from adapters.ssda903_csv import Ssda903CsvReader
from adapters.ssda903_xml import Ssda903XmlReader
from broker.cli import DIR_OPTION, TRANSPORT_OPTION, _transport, load_signed
from broker.keys import SigningKey, key_files
from sgx.errors import MessageInvalid, RecoverableBrokerError
from standard.validator import Validator

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


@click.group()
def adapt() -> None:
    """Turn casework exports into standard messages. Exit codes: 0 all good, 1 findings, 2 usage error."""


@adapt.command()
@DIR_OPTION
@TRANSPORT_OPTION
@click.option("--la", "la_code", required=True, help="The placing authority's DfE LA code (the export has none).")
@click.option("--dry-run", is_flag=True, help="Build and validate; show what would be sent; queue nothing.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write a JSON report here.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ssda903(root: Path, url: str | None, la_code: str, dry_run: bool, report: Path | None,
            files: tuple[Path, ...]) -> None:
    """Read SSDA903 CSV tables (Header and Episodes at least) or the Expanded SSDA903 XML, and send placement
    notifications for what changed.

    \b
    Example:
      sgx adapt ssda903 --dir ex --la 886 header.csv episodes.csv --dry-run
    """
    directory = load_signed(root)
    sender = f"la-{la_code}"
    if sender not in directory.participants:
        raise click.BadParameter(f"no participant {sender} in the directory", param_hint="--la")
    records: dict[str, list[Record]] = {}
    problems: list[Problem] = []
    rows = 0
    for file in files:
        reader = Ssda903XmlReader() if file.suffix.lower() == ".xml" else Ssda903CsvReader()
        for item in reader.read(file):
            if isinstance(item, Problem):
                problems.append(item)
            else:
                rows += 1
                records.setdefault(item.table, []).append(item)
    if "episodes" not in records or "header" not in records:
        problems.append(Problem("missing-table", ", ".join(f.name for f in files), None, None,
                                "placement notifications need both the Header and the Episodes tables"))
    (root / "adapter-state").mkdir(exist_ok=True)
    store = ChangeStore(root / "adapter-state" / f"{sender}.db")
    plan = plan_messages(la_code, records.get("header", []), records.get("episodes", []), directory, store)
    problems += plan.problems
    validator = Validator()
    built = Counter()
    outbox = None
    if not dry_run:
        from broker.outbox import Outbox

        found = key_files(root / "keys", sender)
        if not found:
            raise click.ClickException(f"no key for {sender}; run 'sgx directory keygen --participant {sender}'")
        (root / "outbox").mkdir(exist_ok=True)
        outbox = Outbox(root / "outbox" / f"{sender}.db", sender, SigningKey.load(found[-1]), validator=validator)
    for state, message in plan.messages:
        event = message["entry"][0]["resource"]["eventCoding"]["code"]
        try:
            if outbox is None:
                validator.validate(message)
            else:
                outbox.add(message)
                key, _, digest = state.rpartition("|")
                store.remember(key, digest, message["identifier"]["value"])
        except MessageInvalid as exc:
            problems.append(Problem("message-invalid", "built message", None, None, f"{event}: {exc}"))
            continue
        built[event] += 1
    sent = 0
    if outbox is not None:
        try:
            sent = outbox.drain(_transport(root, url))
        except RecoverableBrokerError:
            sent = 0
    by_code = Counter(p.code for p in problems)
    for p in problems:
        click.echo(str(p), err=True)
    summary = {"rows_read": rows, "messages_built": dict(built), "unchanged": plan.unchanged,
               "out_of_scope": plan.out_of_scope, "sent": sent, "waiting": outbox.pending() if outbox else 0,
               "findings": dict(by_code), "dry_run": dry_run}
    click.echo(orjson.dumps(summary).decode())
    if report:
        report.write_bytes(orjson.dumps({**summary, "problems": [p.__dict__ for p in problems]},
                                        option=orjson.OPT_INDENT_2))
    sys.exit(EXIT_FINDINGS if problems else EXIT_OK)


adapt.add_command(ssda903, name="ssda903-xml")
