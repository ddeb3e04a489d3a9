"""`sgx adapt`: turn legacy exports into standard messages in the sender's outbox.

Every command reads its files (problems name file, row or element and field, never a value), plans the
messages for what changed since the last run, validates each one, queues it in the sender's outbox and
tries to send. Exit codes: 0 all good, 1 findings (the good rows still went through), 2 usage error.
"""

from __future__ import annotations

import copy
import functools
import gc
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import click
import orjson

from adapters.base import Problem, Reader, Record, Refused
from adapters.outcomes import HELD_BACK, NOT_NOTIFIABLE, REFUSED, SENT, Ledger
from adapters.placements import ChangeStore, Plan, Planned
from adapters.queueing import BATCH, processes_for, queue
from broker.directory import Directory
from broker.exchange_folder import ExchangeFolder
from broker.options import DIR_OPTION, TRANSPORT_OPTION
from standard.errors import DirectoryError, RecoverableBrokerError
from standard.validator import HOT_PATH, Validator

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
KEEP_PER_CODE = 100  # problems kept per file and code; the rest are counted, so a broken file cannot flood memory

DRY_RUN = click.option("--dry-run", is_flag=True, help="Build and validate; show what would be sent; queue nothing.")
REPORT = click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
                      help="Write a report here: .html for people, .json for programs.")
PROGRESS = click.option("--progress/--no-progress", default=None,
                        help="Show a progress bar (default: when the terminal is interactive).")
SPLIT = click.option("--split-by-la", is_flag=True,
                     help="The file holds several authorities' rows (a regional file): send only this run's "
                          "authority's rows and leave the others, not notifiable, for their own runs. Without it, "
                          "another authority's row is refused with a finding.")
LA = click.option("--la", "la_code", required=True, help="The placing authority's DfE LA code, e.g. 886.")
FILES = click.argument("files", nargs=-1, required=True,
                       type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))


class SetupError(click.ClickException):
    """A usage or set-up error (exchange folder, keys, a file of the wrong kind): exit 2, nothing read or sent."""

    exit_code = EXIT_USAGE


class Run:
    """One adapter run, from files to outbox, with its summary and report."""

    def __init__(self, root: Path, url: str | None, sender: str, *, dry_run: bool, report: Path | None,
                 progress: bool | None, split_by_la: bool = False):
        self.root, self.url, self.sender = root, url, sender
        self.dry_run, self.report_path, self.split_by_la = dry_run, report, split_by_la
        self.progress = sys.stderr.isatty() if progress is None else progress
        if report is not None and not report.resolve().parent.is_dir():
            raise SetupError(f"--report {report}: its folder does not exist; create it or name another")
        self.folder = ExchangeFolder(root, url, warn=lambda line: click.echo(line, err=True))
        self.directory: Directory = _exchange(self.folder)
        if sender not in self.directory.participants:
            raise SetupError(f"no participant {sender} in the directory of {root}; check --la or --sender")
        if not dry_run and not self.folder.has_key(sender):
            raise SetupError(f"no signing key for {sender} in {root / 'keys'}: run 'sgx directory keygen --dir "
                             f"{root} --participant {sender}' (or try it first with --dry-run)")
        self.problems: list[Problem] = []
        self.found: Counter[str] = Counter()  # every problem by code, including those not kept
        self._kept: Counter[tuple[str, str]] = Counter()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self.ledger = Ledger()
        self.built: Counter[str] = Counter()
        self.sending: dict[tuple[str, str], tuple[int, Planned]] = {}  # (event, setting URN) -> (messages, one)
        self.sent = self.resent = self.waiting = self.unchanged = 0
        state = self.folder.adapter_state_file(sender)
        state.parent.mkdir(exist_ok=True)
        self.store = ChangeStore(state)
        # The hot path (every layer but the FHIR model check), as the router runs: the messages come from the
        # standard's own composer, whose output the test suite checks with full validation.
        self.validator = Validator(HOT_PATH)

    @property
    def la_code(self) -> str:
        """The sender's DfE LA code (commands that read an LA's own returns are sent as the LA)."""
        return self.directory.participants[self.sender].codes.get("dfe_la") or self.sender.removeprefix("la-")

    def check_formats(self, files: Iterable[Path], accepted: frozenset[str], command: str) -> None:
        """Refuse (exit 2) before reading anything when a file is not what the command reads."""
        from adapters.formats import wrong_format

        files = list(files)
        names = Counter(f.name for f in files)
        twice = sorted(name for name, n in names.items() if n > 1)
        if twice:  # findings and row outcomes name a file by its name: two of one name could not be told apart
            raise SetupError(f"more than one file named {', '.join(twice)} (or one file given twice); findings name "
                             "files by name, so give each export once, renaming one if they differ")
        for file in files:
            wrong = wrong_format(file, accepted, command)
            if wrong:
                raise SetupError(wrong)

    def read(self, files: Iterable[Path], reader_for: Callable[[Path], Reader]) -> dict[str, list[Record]]:
        """Every record of the files by table; problems are kept for the summary, refused rows counted."""
        files = list(files)
        records: dict[str, list[Record]] = {}
        total = sum(f.stat().st_size for f in files)
        # The export's records and the plan made from them are plain data (no reference cycles): while they grow,
        # the collector would only walk them again and again. It is off until delivery begins (`deliver`), and the
        # command turns it back on whatever happens.
        gc.disable()
        self._read_files(files, reader_for, records, total)
        return records

    def _read_files(self, files: list[Path], reader_for: Callable[[Path], Reader], records: dict[str, list[Record]],
                    total: int) -> None:
        with click.progressbar(length=total, label="reading", file=sys.stderr,
                               hidden=not self.progress) as bar:
            for file in files:
                try:
                    done = self._read_file(file, reader_for(file), records, bar)
                except OSError as exc:  # gone or unreadable since it was named: nothing has been sent yet
                    raise SetupError(f"{file.name} cannot be read ({exc.strerror or exc}); check the file and run "
                                     "again") from None
                bar.update(file.stat().st_size - done)

    def _read_file(self, file: Path, reader: Reader, records: dict[str, list[Record]], bar) -> int:
        """One file's items into records, problems and outcomes; returns the bytes reported to the bar."""
        done = 0
        for n, item in enumerate(reader.read(file)):
            if isinstance(item, Problem):
                self.add(item)
            elif isinstance(item, Refused):
                if item.row is None or item.rows != 1:
                    self.ledger.refuse_file(item.rows)
                else:
                    self.ledger.settle([item.where], REFUSED)
            else:
                self.ledger.read(item.where)
                records.setdefault(item.table, []).append(item)
            if n % 2048 == 0:
                position = reader.position
                bar.update(position - done)
                done = position
        return done

    def own_rows(self, records: list[Record], column: str, heading: str | None = None) -> list[Record]:
        """The records that are this run's authority's. A record whose authority column (LA in regional
        files) names another authority is never sent under this sender's identity: it is refused with a
        finding, or with --split-by-la left not notifiable for that authority's own run. Records without the
        column (the export has none) are the sender's own."""
        from adapters.authorities import Authorities

        heading = heading or column
        authorities = Authorities()
        mine = self.la_code
        kept: list[Record] = []
        for r in records:
            if column not in r.values:
                kept.append(r)
                continue
            named = authorities.find(r.values[column])
            code = named.dfe_code if named else None
            if code == mine:
                kept.append(r)
            elif code and self.split_by_la:
                self.ledger.settle([r.where], NOT_NOTIFIABLE, "other-la")
            else:
                self.ledger.settle([r.where], REFUSED)
                self.add(Problem("other-authority", r.file, r.row, heading, f"the row is LA {code}'s, not "
                                 f"{mine}'s: it was not sent, because each authority sends its own children; run the "
                                 "file with --split-by-la to leave other authorities' rows for their own runs")
                         if code else
                         Problem("unknown-authority", r.file, r.row, heading, "the row names no English authority "
                                 "the exchange knows (give the DfE code, ONS code or name), so it cannot be checked "
                                 f"against {mine}; it was not sent: correct the {heading} value"))
        return kept

    def settle_all(self, records: Iterable[Record], outcome: str, reason: str | None = None) -> None:
        """Rows used only as context (or from a table the exchange does not read): an outcome all the same."""
        self.ledger.settle((r.where for r in records), outcome, reason)

    def add(self, problem: Problem) -> None:
        self.found[problem.code] += 1
        where = (problem.file, problem.code)
        if self._kept[where] >= KEEP_PER_CODE:
            self._dropped[where] += 1
            return
        self._kept[where] += 1
        self.problems.append(problem)

    def send(self, plan: Plan) -> None:
        """Take a plan's problems, counts and row outcomes, and deliver its messages."""
        for problem in plan.problems:
            self.add(problem)
        self.unchanged += plan.unchanged
        for rows, outcome, reason in plan.outcomes:
            self.ledger.settle(rows, outcome, reason)
        self.deliver(plan.messages)

    def deliver(self, planned: list[Planned]) -> None:
        """Validate and queue the messages in batches; remember each batch in the change store once queued."""
        gc.enable()  # off since reading began (see `read`); the worker pool, if any, freezes what exists now
        outbox = self._outbox(len(planned))
        batch_sender = _BatchSender(outbox, self.folder)
        try:
            self._deliver(planned, outbox, batch_sender)
        finally:
            batch_sender.close()
            if outbox is not None:
                outbox.close()

    def _deliver(self, planned: list[Planned], outbox, batch_sender: _BatchSender) -> None:
        queued: set[int] = set()
        with click.progressbar(length=len(planned), label="queueing", file=sys.stderr,
                               hidden=not self.progress) as bar:
            def queued_batch(n: int) -> None:
                bar.update(n)
                # Each batch goes as soon as it is queued, while the worker processes prepare the next.
                self.sent += batch_sender.send(n)

            for item in queue(planned, outbox, self.store, self.validator, queued_batch):
                if isinstance(item, Problem):
                    self.add(item)
                else:
                    queued.add(id(item))
                    self.built[item.event] += 1
                    group = (item.event, item.placement.urn if item.placement else _setting_of(item.message))
                    count, sample = self.sending.get(group, (0, item))
                    self.sending[group] = (count + 1, sample)
                    self.ledger.settle(item.rows, SENT)
        for item in planned:  # refused by the validator: held until the row is corrected
            if id(item) not in queued:
                self.ledger.settle(item.rows, HELD_BACK)
        if outbox is None:
            self.store.assume(item for item in planned if id(item) in queued)
            return
        resent = outbox.resend_recoverable()  # refused earlier for a reason since lifted, perhaps: try again
        if resent:
            self.resent += len(resent)
            click.echo(f"{len(resent)} message(s) the exchange refused earlier (a recipient not onboarded yet, "
                       "or without a queue) are sent again", err=True)
        self.sent += batch_sender.send(None)  # what is left: the resent, and any waiting from an earlier run
        self.waiting = outbox.pending()
        if self.waiting:
            click.echo(f"{self.waiting} message(s) could not be sent now (the exchange is unreachable); they "
                       "wait in the outbox and go with the next run", err=True)

    def _outbox(self, messages: int):
        if self.dry_run:
            return None
        return self.folder.outbox(self.sender, validator=self.validator,
                                  processes=processes_for(messages))

    def finish(self) -> None:
        # No silent bucket: a row no step decided about is a finding (a fault of the adapter, never of the data).
        for file, row in self.ledger.unsettled():
            self.add(Problem("unaccounted-row", file, row, None, "the adapter reached no decision about this row; "
                             "nothing of it was sent: report this to the exchange's maintainers"))
            self.ledger.settle([(file, row)], HELD_BACK)
        for (file, code), n in self._dropped.items():
            self.problems.append(Problem(code, file, None, None, f"... and {n} more like the above in this file, "
                                         "not listed: fix those first and run again"))
        for p in self.problems:
            click.echo(str(p), err=True)
        rows, reasons = self.ledger.counts()
        summary = {"rows_read": self.ledger.total, "rows": rows, "not_notifiable": reasons,
                   "messages_built": dict(self.built), "unchanged": self.unchanged,
                   "sent": self.sent, "resent": self.resent, "waiting": self.waiting,
                   "findings": dict(sorted(self.found.items())), "dry_run": self.dry_run}
        click.echo(orjson.dumps(summary).decode())
        if self.report_path:
            from adapters.report import sending_table, write_report

            try:
                write_report(self.report_path, summary, self.problems,
                             sending_table({group: (n, one.message) for group, (n, one) in self.sending.items()},
                                           self.directory))
            except OSError as exc:  # the run itself is done: say so, and that only the report is missing
                click.echo(f"the report could not be written to {self.report_path} ({exc.strerror or exc}); the "
                           "summary above is complete", err=True)
                sys.exit(EXIT_USAGE)
        sys.exit(EXIT_FINDINGS if self.problems else EXIT_OK)


class _BatchSender:
    """Sends what the outbox has queued, batch by batch; once the exchange is found unreachable it stops trying
    for the rest of the run (each try would wait for a connection to fail), and the rest waits in the outbox."""

    def __init__(self, outbox, folder: ExchangeFolder):
        self.outbox, self.folder = outbox, folder
        self.transport = None
        self.unreachable = outbox is None

    def send(self, limit: int | None) -> int:
        """Send at most `limit` waiting messages, the oldest first (all of them with None); returns how many
        went."""
        if self.unreachable:
            return 0
        try:
            # Opened on first use: after the worker processes started, so that they are not forked holding it.
            self.transport = self.transport or self.folder.transport()
        except RecoverableBrokerError:
            self.unreachable = True
            return 0
        drained = self.outbox.send_waiting(self.transport, batch=BATCH, limit=limit)
        self.unreachable = drained.interrupted
        return drained.sent

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


def _setting_of(message: dict) -> str:
    """The URN of the setting a message is about (the first Location's Ofsted identifier)."""
    for entry in message.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "Location":
            for identifier in resource.get("identifier", []):
                return identifier.get("value", "")
    return ""


def _exchange(folder: ExchangeFolder) -> Directory:
    """The signed directory of an exchange folder, or a set-up error (exit 2) saying what is missing."""
    root = folder.root
    if not root.is_dir():
        raise SetupError(f"{root} is not an exchange folder (it does not exist); give the folder with --dir")
    try:
        return folder.load_directory()
    except (DirectoryError, OSError) as exc:
        raise SetupError(f"the directory in {root} cannot be used: {exc}") from None


@click.group()
def adapt() -> None:
    """Turn casework exports into standard messages. Exit codes: 0 all good, 1 findings, 2 usage error."""


def adapter_command(name: str | None = None, *, sender: click.Option | None = None):
    """An `sgx adapt` command with the options they all share; it is called with its Run, its files and its
    own options. `sender` is the option naming the sender (default: --la, the placing authority)."""

    def wrap(f: Callable) -> click.Command:
        @functools.wraps(f)
        def command(root: Path, url: str | None, dry_run: bool, report: Path | None, progress: bool | None,
                    split_by_la: bool, files: tuple[Path, ...], **own):
            who = own.pop("sender") if sender else f"la-{own.pop('la_code')}"
            collecting = gc.isenabled()
            try:
                return f(Run(root, url, who, dry_run=dry_run, report=report, progress=progress,
                             split_by_la=split_by_la), files, **own)
            finally:
                if collecting:  # reading turns the collector off until delivery: a run that stops before it, too
                    gc.enable()

        for option in reversed([DIR_OPTION, TRANSPORT_OPTION, sender or LA, DRY_RUN, REPORT, PROGRESS, SPLIT, FILES]):
            command = option(command)
        return adapt.command(name)(command)

    return wrap


# Tables of the SSDA903 return that state a child's date of birth and sex, checked against the Header.
_STATES_CHILD = ("header", "uasc", "missing", "reviews", "oc2", "oc3", "ad1", "placed_for_adoption",
                 "previous_permanence", "social_worker", "dolo")


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
    from adapters.formats import SSDA903_XML, TEXT, kind_of
    from adapters.placements import children_of, placements, plan_messages
    from adapters.ssda903_csv import Ssda903CsvReader
    from adapters.ssda903_xml import Ssda903XmlReader

    la_code = run.la_code
    run.check_formats(files, frozenset({TEXT, SSDA903_XML}), "ssda903")
    read = run.read(files, lambda f: Ssda903XmlReader() if kind_of(f) == SSDA903_XML else Ssda903CsvReader())
    records = {table: run.own_rows(rows, "LA") for table, rows in read.items()}
    if "episodes" not in records or "header" not in records:
        run.add(Problem("missing-table", ", ".join(f.name for f in files), None, None,
                        "placement notifications need both the Header and the Episodes tables"))
    found: list[Problem] = []
    # A child's facts from every table that states them: Header rows (and other tables) that disagree about a
    # child hold the child's messages back.
    children = children_of(records.get("header", []), found)
    _check_other_tables(records, children, found)
    episodes = placements(records.get("episodes", []), found)
    for problem in found:
        run.add(problem)
    placed = plan_messages(la_code, children, episodes, run.directory, run.store)
    run.send(placed)
    # Missing episodes (not "away without authorisation") of children placed in another area: after the
    # placements, so that a child's placement sent in this run is known.
    missing, absences, incomplete = [], [], []
    for r in records.get("missing", []):
        if r.values.get("MISSING") != "M":
            absences.append(r)
        elif r.values.get("MIS_START"):
            missing.append(Signal("missing-episode", r.values["CHILD"], r.values["MIS_START"], r.file, r.row,
                                  where=r.where))
        else:
            incomplete.append(r)
            run.add(Problem("missing-value", r.file, r.row, "MIS_START", "a missing episode needs its start date "
                            "to be notified; record it"))
    run.settle_all(absences, NOT_NOTIFIABLE, "not-missing")
    run.settle_all(incomplete, HELD_BACK)
    run.send(plan_concerns(la_code, missing, children, run.directory, run.store, held=placed.held))
    # Every row stating a conflicting child's facts is held, placements or not, until the export agrees.
    run.ledger.settle((where for child in children.values() if child.conflict for where in child.rows), HELD_BACK)
    run.settle_all(records.get("header", []), NOT_NOTIFIABLE, "no-placement")
    for table, rows in records.items():
        if table not in {"header", "episodes", "missing"}:
            run.settle_all(rows, NOT_NOTIFIABLE, "table-not-used")
    run.finish()


def _check_other_tables(records: dict[str, list[Record]], children: dict, found: list[Problem]) -> None:
    """A date of birth or sex in another table (UASC, Missing, Reviews, ...) that disagrees with the child's
    Header row is a conflict: the child's messages are held, and the finding names the row that disagrees."""
    for table in _STATES_CHILD[1:]:
        for r in records.get(table, []):
            child = children.get(r.values["CHILD"])
            if child is None:
                continue
            for column, known in (("DOB", child.birth_date), ("SEX", child.sex)):
                value = r.values.get(column)
                if value is not None and known is not None and value != known and column not in child.conflict:
                    child.conflict = (*child.conflict, column)
                    child.rows.append(r.where)
                    found.append(Problem("conflicting-child-facts", r.file, r.row, column, f"the {column} here "
                                         f"disagrees with the child's Header row ({child.file} row {child.row}); "
                                         "nothing about the child is sent until the export gives one value: "
                                         "correct it in the case management system"))


# The Expanded SSDA903 XML is read by the same command (chosen per file by its content), under its own name and help.
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
    from adapters.formats import WORKBOOK
    from adapters.placements import plan_messages

    run.check_formats(files, frozenset({WORKBOOK}), "annex-a")
    records = run.own_rows(run.read(files, lambda f: AnnexAReader()).get("list_8", []), "LA")
    found: list[Problem] = []
    children, placed = placements_from(records, found)
    for problem in found:
        run.add(problem)
    run.send(plan_messages(run.la_code, children, placed, run.directory, run.store))
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
    from adapters.formats import CIN_XML

    run.check_formats(files, frozenset({CIN_XML}), "cin")
    records = run.read(files, lambda f: CinCensusReader())
    signals, children, problems, other = signals_of(run.la_code, records)
    if other:  # another authority's file: never sent under this sender's identity
        every = [r for rows in records.values() for r in rows]
        if run.split_by_la:
            run.settle_all(every, NOT_NOTIFIABLE, "other-la")
        else:
            run.settle_all(every, REFUSED)
            for problem in problems:
                run.add(problem)
        return run.finish()
    for problem in problems:
        run.add(problem)
    run.send(plan_concerns(run.la_code, signals, children, run.directory, run.store))
    run.ledger.settle((where for child in children.values() if child.conflict for where in child.rows), HELD_BACK)
    run.settle_all(records.get("source", []), NOT_NOTIFIABLE, "file-header")
    run.settle_all(records.get("child", []), NOT_NOTIFIABLE, "no-signal")
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
    from adapters.formats import TEXT, WORKBOOK
    from adapters.mapped import MappedReader, Mapping, plan_mapped
    from standard.errors import MappingError

    try:
        spec = Mapping.load(mapping)
    except MappingError as exc:
        raise SetupError(str(exc)) from None
    run.check_formats(files, frozenset({TEXT, WORKBOOK}), "mapped")
    rows = run.own_rows(run.read(files, lambda f: MappedReader(spec)).get("row", []), "la", spec.columns.get("la"))
    run.send(plan_mapped(spec, run.sender, rows, run.directory, run.store))
    run.finish()
