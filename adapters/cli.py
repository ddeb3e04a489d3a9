"""`sgx adapt`: turn legacy exports into standard messages in the sender's outbox.

Every command reads its files (problems name file, row or element and field, never a value), plans the
messages for what changed since the last run, validates each one, queues it in the sender's outbox and
tries to send. Exit codes: 0 all good, 1 findings (the good rows still went through), 2 usage error.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import click
import orjson

from adapters.base import Problem, Reader, Record
from adapters.placements import ChangeStore, Plan, Planned
from adapters.queueing import BATCH, event_of, queue
from broker.cli import DIR_OPTION, TRANSPORT_OPTION, _transport, load_signed, participant_outbox
from broker.directory import Directory
from sgx.errors import RecoverableBrokerError
from standard.validator import HOT_PATH, Validator

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
KEEP_PER_CODE = 100  # problems kept per file and code; the rest are counted, so a broken file cannot flood memory

DRY_RUN = click.option("--dry-run", is_flag=True, help="Build and validate; show what would be sent; queue nothing.")
REPORT = click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
                      help="Write a report here: .html for people, .json for programs.")
PROGRESS = click.option("--progress/--no-progress", default=None,
                        help="Show a progress bar (default: when the terminal is interactive).")
LA = click.option("--la", "la_code", required=True, help="The placing authority's DfE LA code, e.g. 886.")
FILES = click.argument("files", nargs=-1, required=True,
                       type=click.Path(exists=True, dir_okay=False, path_type=Path))


class Run:
    """One adapter run, from files to outbox, with its summary and report."""

    def __init__(self, root: Path, url: str | None, sender: str, *, dry_run: bool, report: Path | None,
                 progress: bool | None):
        self.root, self.url, self.sender = root, url, sender
        self.dry_run, self.report_path = dry_run, report
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.directory: Directory = load_signed(root)
        if sender not in self.directory.participants:
            raise click.UsageError(f"no participant {sender} in the directory")
        self.problems: list[Problem] = []
        self.found: Counter[str] = Counter()  # every problem by code, including those not kept
        self._kept: Counter[tuple[str, str]] = Counter()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self.rows = 0
        self.built: Counter[str] = Counter()
        self.sent = self.waiting = self.unchanged = self.out_of_scope = 0
        (root / "adapter-state").mkdir(exist_ok=True)
        self.store = ChangeStore(root / "adapter-state" / f"{sender}.db")
        # The hot path (every layer but the FHIR model check), as the router runs: the messages come from the
        # standard's own composer, whose output the test suite checks with full validation.
        self.validator = Validator(HOT_PATH)

    @property
    def la_code(self) -> str:
        """The sender's DfE LA code (commands that read an LA's own returns are sent as the LA)."""
        return self.directory.participants[self.sender].codes.get("dfe_la") or self.sender.removeprefix("la-")

    def read(self, files: Iterable[Path], reader_for: Callable[[Path], Reader]) -> dict[str, list[Record]]:
        """Every record of the files by table; problems are kept for the summary."""
        files = list(files)
        records: dict[str, list[Record]] = {}
        total = sum(f.stat().st_size for f in files)
        with click.progressbar(length=total, label="reading", file=sys.stderr,
                               hidden=not self.progress) as bar:
            for file in files:
                reader, done = reader_for(file), 0
                for n, item in enumerate(reader.read(file)):
                    if isinstance(item, Problem):
                        self.add(item)
                    else:
                        self.rows += 1
                        records.setdefault(item.table, []).append(item)
                    if n % 2048 == 0:
                        position = reader.position
                        bar.update(position - done)
                        done = position
                bar.update(file.stat().st_size - done)
        return records

    def add(self, problem: Problem) -> None:
        self.found[problem.code] += 1
        where = (problem.file, problem.code)
        if self._kept[where] >= KEEP_PER_CODE:
            self._dropped[where] += 1
            return
        self._kept[where] += 1
        self.problems.append(problem)

    def send(self, plan: Plan) -> None:
        """Take a plan's problems and counts, and deliver its messages."""
        for problem in plan.problems:
            self.add(problem)
        self.unchanged += plan.unchanged
        self.out_of_scope += plan.out_of_scope
        self.deliver(plan.messages)

    def deliver(self, planned: list[Planned]) -> None:
        """Validate and queue the messages in batches; remember each batch in the change store once queued."""
        outbox = self._outbox()
        with click.progressbar(length=len(planned), label="queueing", file=sys.stderr,
                               hidden=not self.progress) as bar:
            for item in queue(planned, outbox, self.store, self.validator, bar.update):
                if isinstance(item, Problem):
                    self.add(item)
                else:
                    self.built[event_of(item)] += 1
        if outbox is not None:
            with contextlib.suppress(RecoverableBrokerError):  # reported below with the count
                self.sent += outbox.drain(_transport(self.root, self.url, self.directory), batch=BATCH)
            self.waiting = outbox.pending()
            if self.waiting:
                click.echo(f"{self.waiting} message(s) could not be sent now (the exchange is unreachable); they "
                           "wait in the outbox and go with the next run", err=True)

    def _outbox(self):
        return None if self.dry_run else participant_outbox(self.root, self.sender, validator=self.validator)

    def finish(self) -> None:
        for (file, code), n in self._dropped.items():
            self.problems.append(Problem(code, file, None, None, f"... and {n} more like the above in this file, "
                                         "not listed: fix those first and run again"))
        for p in self.problems:
            click.echo(str(p), err=True)
        summary = {"rows_read": self.rows, "messages_built": dict(self.built), "unchanged": self.unchanged,
                   "out_of_scope": self.out_of_scope,
                   "sent": self.sent, "waiting": self.waiting, "findings": dict(sorted(self.found.items())),
                   "dry_run": self.dry_run}
        click.echo(orjson.dumps(summary).decode())
        if self.report_path:
            from adapters.report import write_report

            write_report(self.report_path, summary, self.problems)
        sys.exit(EXIT_FINDINGS if self.problems else EXIT_OK)


@click.group()
def adapt() -> None:
    """Turn casework exports into standard messages. Exit codes: 0 all good, 1 findings, 2 usage error."""


def adapter_command(name: str | None = None, *, sender: click.Option | None = None):
    """An `sgx adapt` command with the options they all share; it is called with its Run, its files and its
    own options. `sender` is the option naming the sender (default: --la, the placing authority)."""

    def wrap(f: Callable) -> click.Command:
        @functools.wraps(f)
        def command(root: Path, url: str | None, dry_run: bool, report: Path | None, progress: bool | None,
                    files: tuple[Path, ...], **own):
            who = own.pop("sender") if sender else f"la-{own.pop('la_code')}"
            return f(Run(root, url, who, dry_run=dry_run, report=report, progress=progress), files, **own)

        for option in reversed([DIR_OPTION, TRANSPORT_OPTION, sender or LA, DRY_RUN, REPORT, PROGRESS, FILES]):
            command = option(command)
        return adapt.command(name)(command)

    return wrap


@adapter_command()
def ssda903(run: Run, files: tuple[Path, ...]) -> None:
    """Read SSDA903 CSV tables (Header and Episodes at least; Missing too, if given) or the Expanded SSDA903 XML,
    and send placement notifications for what changed, and a concern notification for each missing episode of
    a child placed in another area.

    \b
    Example:
      sgx adapt ssda903 --dir ex --la 886 header.csv episodes.csv --dry-run
    """
    from adapters.concerns import Signal, plan_concerns
    from adapters.placements import children_of, placements, plan_messages
    from adapters.ssda903_csv import Ssda903CsvReader
    from adapters.ssda903_xml import Ssda903XmlReader

    la_code = run.la_code
    records = run.read(files, lambda f: Ssda903XmlReader() if f.suffix.lower() == ".xml" else Ssda903CsvReader())
    if "episodes" not in records or "header" not in records:
        run.add(Problem("missing-table", ", ".join(f.name for f in files), None, None,
                        "placement notifications need both the Header and the Episodes tables"))
    children = children_of(records.get("header", []))
    run.send(plan_messages(la_code, children, placements(records.get("episodes", [])), run.directory, run.store))
    # Missing episodes (not "away without authorisation") of children placed in another area: after the
    # placements, so that a child's placement sent in this run is known.
    missing = [Signal("missing-episode", r.values["CHILD"], r.values["MIS_START"], r.file, r.row)
               for r in records.get("missing", []) if r.values.get("MISSING") == "M" and r.values.get("MIS_START")]
    run.send(plan_concerns(la_code, missing, children, run.directory, run.store))
    run.finish()


# The Expanded SSDA903 XML is read by the same command (chosen per file by its suffix), under its own name and help.
ssda903_xml = copy.copy(ssda903)
ssda903_xml.help = """Read an Expanded SSDA903 XML export (one file holding every child's header and episodes)
    and send placement notifications for what changed.

    \b
    Example:
      sgx adapt ssda903-xml --dir ex --la 886 export.xml --dry-run
    """
ssda903_xml.short_help = "Read an Expanded SSDA903 XML export and send placement notifications."
adapt.add_command(ssda903_xml, name="ssda903-xml")


@adapter_command("annex-a")
def annex_a(run: Run, files: tuple[Path, ...]) -> None:
    """Read Ofsted's Annex A workbook (List 8, children in care) and send placement notifications for what
    changed. Lists the exchange does not use are read for problems only where they share columns.

    \b
    Example:
      sgx adapt annex-a --dir ex --la 886 "Annex A.xlsx"
    """
    from adapters.annex_a import AnnexAReader, placements_from
    from adapters.placements import plan_messages

    records = run.read(files, lambda f: AnnexAReader())
    children, found = placements_from(records.get("list_8", []))
    run.send(plan_messages(run.la_code, children, found, run.directory, run.store))
    run.finish()


@adapter_command()
def cin(run: Run, files: tuple[Path, ...]) -> None:
    """Read CIN census XML (2017 to 2026 schemas) and send a concern notification to the host authority when a
    Section 47 enquiry or child protection plan starts for a child this authority has placed at a setting in
    another area (as told to the exchange by earlier placement notifications).

    \b
    Example:
      sgx adapt cin --dir ex --la 886 cin_census_2026.xml
    """
    from adapters.cin_census import CinCensusReader, signals_of
    from adapters.concerns import plan_concerns

    records = run.read(files, lambda f: CinCensusReader())
    signals, children, problems = signals_of(run.la_code, records)
    for problem in problems:
        run.add(problem)
    run.send(plan_concerns(run.la_code, signals, children, run.directory, run.store))
    run.finish()


@adapter_command(sender=click.option("--sender", required=True,
                                     help="Participant id sending the messages, e.g. la-886 or lado-371."))
@click.option("--mapping", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The mapping file (TOML): which columns are which message fields. See examples/mappings/.")
def mapped(run: Run, files: tuple[Path, ...], mapping: Path) -> None:
    """Read any CSV or XLSX log (a LADO log, a complaints or whistleblowing log) through a declarative
    mapping, and send allegation referrals or concern notifications for new or changed rows.

    \b
    Example:
      sgx adapt mapped --dir ex --sender la-886 --mapping examples/mappings/lado-log.toml lado-log.csv
    """
    from adapters.mapped import MappedReader, Mapping, plan_mapped
    from sgx.errors import MappingError

    try:
        spec = Mapping.load(mapping)
    except MappingError as exc:
        raise click.UsageError(str(exc)) from None
    records = run.read(files, lambda f: MappedReader(spec))
    run.send(plan_mapped(spec, run.sender, records.get("row", []), run.directory, run.store))
    run.finish()
