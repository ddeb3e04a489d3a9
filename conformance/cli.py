"""`sgx conformance`: the requirements of the standard and the kits that prove a system meets them.

Exit codes: 0 every test passed (skips carry their reasons), 1 a test failed or errored, 2 usage or set-up error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from standard.errors import ConformanceError, SafeguardingExchangeError

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@click.group()
def conformance() -> None:
    """Prove a system meets the standard: its messages (messages kit), its sending and its receiving (sender and
    receiver kits, the kit playing the exchange)."""


@conformance.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def requirements(fmt: str) -> None:
    """List every requirement of the standard, where it is written, and the checks that prove it."""
    from conformance.coverage import coverage

    rows = coverage()
    if fmt == "json":
        click.echo(orjson.dumps([{"id": c.requirement.id, "text": c.requirement.text,
                                  "where": f"requirements.html#{c.requirement.id}", "findings":
                                  list(c.requirement.findings), "cases": len(c.cases), "tests": list(c.tests),
                                  "unchecked_reason": c.reason} for c in rows], option=orjson.OPT_INDENT_2).decode())
        return
    for c in rows:
        checks = f"{len(c.cases)} case(s); tests: {', '.join(c.tests) or 'none'}"
        if not c.covered:
            checks = f"NOT CHECKED: {c.reason or 'no reason given'}"
        click.echo(f"{c.requirement.id}  {c.requirement.text}\n         {checks}")


@conformance.command()
@click.option("--kit", type=click.Choice(["messages", "receiver", "sender"]), required=True, help="Which kit to run.")
@click.option("--messages", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="messages kit: the folder of messages the system produced (<scenario id>.json for each "
                   "scenario; see `conformance/scenarios/`).")
@click.option("--scenario", "selected", multiple=True, help="Only these scenarios (repeatable); the others are "
              "skipped with that reason.")
@click.option("--sut-run", help="receiver kit: the command that runs your receiving system until SIGTERM; {config} "
              "is replaced by the path of the configuration file the kit writes.")
@click.option("--sut-stored", help="receiver kit: a command that prints, as a JSON array, the ids of the messages "
              "your system holds ({config} as for --sut-run); without it the tests that need it are skipped.")
@click.option("--sut-send", help="sender kit: the command that makes your system send one scenario and exit; "
              "{scenario} is the scenario file, {config} the configuration file.")
@click.option("--sut-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="sender and receiver kits: your system's public key (JWK or PEM); you keep the private key.")
@click.option("--rabbit-dir", type=click.Path(file_okay=False, path_type=Path),
              help="sender and receiver kits: use the RabbitMQ node of this folder (started by 'sgx broker "
                   "dev-server') instead of starting one.")
@click.option("--ack-deadline", type=float, default=15.0, show_default=True,
              help="receiver kit: seconds your system has to acknowledge each message.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.json, report.xml (JUnit) and report.html here.")
@click.option("--quiet", is_flag=True, help="Print only the summary line.")
@click.option("--certify-key", type=click.Path(dir_okay=False, path_type=Path),
              help="Conformance operator only: the private key that signs a certificate of a passing run "
                   "(written as certificate.jws in --report-dir).")
@click.option("--system", "system_name", help="With --certify-key: the certified system's name.")
@click.option("--system-version", help="With --certify-key: the certified system's version.")
@click.option("--participant", help="The participant that runs the system (named in a certificate). The receiver "
              "kit issues the system this id (default sut-participant); the sender kit issues it each scenario's "
              "sender.")
@click.option("--operator", default="conformance-operator", show_default=True, help="Who issues the certificate.")
@click.option("--valid-days", default=365, show_default=True, type=int, help="How long the certificate is valid.")
def run(kit: str, folder: Path | None, selected: tuple[str, ...], sut_run: str | None, sut_stored: str | None,
        sut_send: str | None, sut_key: Path | None, rabbit_dir: Path | None, ack_deadline: float,
        report_dir: Path | None, quiet: bool, certify_key: Path | None, system_name: str | None,
        system_version: str | None, participant: str | None, operator: str, valid_days: int) -> None:
    """Run a kit against a system (its output, or the running system) and report every test's result.

    \b
    Examples:
      sgx conformance run --kit messages --messages out/ --report-dir reports/
      sgx conformance run --kit receiver --sut-run "mysystem run {config}" \\
          --sut-stored "mysystem stored {config}" --sut-key mysystem.pub.jwk --report-dir reports/
      sgx conformance run --kit sender --sut-send "mysystem send {scenario} {config}" \\
          --sut-key mysystem.pub.jwk --report-dir reports/
    """
    if certify_key is not None and not (report_dir and system_name and system_version):
        _usage("a certificate needs --report-dir (it certifies the report written there), --system and "
               "--system-version")
    from conformance import report as fmt
    from conformance.model import run_suite

    on_test = (lambda r: None) if quiet else (lambda r: click.echo(fmt.terminal_line(r)))
    if kit == "messages":
        result = _run_messages(folder, selected, on_test)
    else:
        result = _run_live(kit, sut_run=sut_run, sut_stored=sut_stored, sut_send=sut_send, sut_key=sut_key,
                           rabbit_dir=rabbit_dir, ack_deadline=ack_deadline, participant=participant,
                           selected=selected, on_test=on_test, run_suite=run_suite)
    click.echo(fmt.summary(result))
    if report_dir is not None:
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
            # A certificate left from an earlier run must never sit beside this run's report.
            (report_dir / "certificate.jws").unlink(missing_ok=True)
            (report_dir / "report.json").write_bytes(fmt.as_json(result))
            (report_dir / "report.xml").write_bytes(fmt.as_junit(result))
            (report_dir / "report.html").write_text(fmt.as_html(result), encoding="utf-8")
        except OSError as exc:
            _usage(f"cannot write the reports into {report_dir}: {exc.strerror}")
        click.echo(f"reports: {report_dir / 'report.html'} (people), report.json, report.xml (JUnit)")
    if certify_key is not None and report_dir is not None:
        if not result.passed:
            click.echo("no certificate: a certificate is issued only when every test passes", err=True)
        else:
            _certify(result, report_dir, certify_key, operator=operator, system=system_name or "",
                     version=system_version or "", participant=participant, valid_days=valid_days)
    sys.exit(EXIT_PASSED if result.passed else EXIT_FAILED)


def _check_scenarios(selected: tuple[str, ...]) -> None:
    from conformance.scenarios import scenarios

    known = {s.id for s in scenarios()}
    unknown = sorted(set(selected) - known)
    if unknown:
        _usage(f"unknown scenario(s) {', '.join(unknown)}; the kit ships: {', '.join(sorted(known))}")


def _run_messages(folder: Path | None, selected: tuple[str, ...], on_test):
    from conformance.kits import KITS
    from conformance.kits.messages import MessagesContext
    from conformance.model import run_suite

    if folder is None:
        _usage("the messages kit needs --messages FOLDER: the messages your system produced")
    if not folder.is_dir():
        _usage(f"{folder} is not a folder; give the folder holding the messages your system produced")
    _check_scenarios(selected)
    try:
        suite = KITS["messages"].build()
        context = MessagesContext(folder, set(selected) or None)
        result = run_suite(suite, context, on_test=on_test)
    except ConformanceError as exc:
        _usage(str(exc))
    result.context = {"messages": folder.name, "files": len(context.files),
                      "scenarios": ", ".join(sorted(selected)) or "all", "events": context.events()}
    return result


def _run_live(kit: str, *, sut_run, sut_stored, sut_send, sut_key, rabbit_dir, ack_deadline, participant,
              selected, on_test, run_suite):
    """The sender and receiver kits: the kit plays the exchange (its own RabbitMQ, or the one of --rabbit-dir)
    towards the running system, in a work folder removed at the end."""
    import tempfile

    from conformance.exchange import PlayedExchange
    from conformance.kits import KITS
    from conformance.sut import command_of

    option = "--sut-run" if kit == "receiver" else "--sut-send"
    command = sut_run if kit == "receiver" else sut_send
    if not command:
        _usage(f"the {kit} kit needs {option} \"COMMAND\": how the kit runs your system (see docs/conformance.md)")
    if sut_key is None:
        _usage(f"the {kit} kit needs --sut-key FILE: your system's public key (JWK or PEM)")
    if not 0 < ack_deadline <= 86400:
        _usage(f"--ack-deadline {ack_deadline:g}: give the seconds your system has to acknowledge, more than 0 and "
               "at most a day (86400)")
    _check_scenarios(selected)
    try:  # a command the kit cannot fill is a usage error found before any broker is started
        command_of(command, option, config="c", scenario="s")
        if sut_stored:
            command_of(sut_stored, "--sut-stored", config="c")
    except ConformanceError as exc:
        _usage(str(exc))
    if kit == "receiver":
        from conformance.kits.receiver import SENDERS, ReceiverContext

        issued, senders = [participant or "sut-participant"], list(SENDERS)
        make = lambda exchange: ReceiverContext(exchange, command, sut_stored, deadline=ack_deadline)  # noqa: E731
    else:
        from conformance.kits.sender import SenderContext, senders_of

        issued, senders = senders_of(set(selected) or None), []  # each scenario is sent as the sender it names
        make = lambda exchange: SenderContext(exchange, command, selected=set(selected) or None)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="sgx-conformance-") as work:
        exchange = PlayedExchange(Path(work), issued[0], sut_key, senders, rabbit_dir=rabbit_dir,
                                  also_as=tuple(issued[1:]))
        context = None
        try:
            exchange.open()
            context = make(exchange)
            context.start()
            result = run_suite(KITS[kit].build(), context, on_test=on_test)
            result.context = {"participants": ", ".join(issued), "system command": command.split()[0],
                              "broker": str(rabbit_dir) if rabbit_dir else "started by the kit"}
            if kit == "sender":  # the events of what arrived: what the standard's tests proved something about
                result.context["events"] = context.messages().events()
        except SafeguardingExchangeError as exc:
            _usage(str(exc))
        finally:
            if context is not None:
                context.close()
            exchange.close()
    return result


def _certify(result, report_dir: Path, key_file: Path, *, valid_days: int, **names) -> None:
    from datetime import timedelta

    from broker.keys import SigningKey
    from conformance import certificate
    from conformance import report as fmt

    try:
        key = SigningKey.load(key_file)
        jws = certificate.issue(result, fmt.digest((report_dir / "report.json").read_bytes()), key,
                                valid_for=timedelta(days=valid_days), **names)
    except SafeguardingExchangeError as exc:
        _usage(str(exc))
    (report_dir / "certificate.jws").write_text(jws + "\n", encoding="ascii")
    click.echo(f"certificate: {report_dir / 'certificate.jws'} (check it with 'sgx conformance verify')")


@conformance.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the conformance operator's private key (its public JWK goes beside it).")
def keygen(out: Path) -> None:
    """Make the conformance operator's signing key (once; keep it out of git and off shared machines)."""
    from broker.keys import SigningKey

    if out.exists():
        _usage(f"{out} exists; a new key would orphan every certificate signed with it")
    fresh = SigningKey.generate("")
    SigningKey(fresh.thumbprint(), fresh.private).save(out)  # the kid is the key's RFC 7638 thumbprint
    click.echo(f"private key {out} (mode 600); public key {out.with_name(out.stem + '.pub.jwk')}: publish it "
               "so that anyone can check certificates")


@conformance.command()
@click.argument("cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--operator-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The conformance operator's public key (JWK or PEM).")
@click.option("--report", "report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also check that this report.json is the one the certificate certifies.")
def verify(cert: Path, operator_key: Path, report_file: Path | None) -> None:
    """Check a conformance certificate: signature, dates and (with --report) the report it certifies.
    Exit 0 valid, 1 invalid or expired, 2 usage error."""
    from datetime import UTC, datetime

    from broker.keys import read_public_key
    from conformance import certificate
    from conformance import report as fmt

    try:
        public, _ = read_public_key(operator_key.read_bytes(), str(operator_key))
    except SafeguardingExchangeError as exc:
        _usage(str(exc))
    digest = fmt.digest(report_file.read_bytes()) if report_file else None
    try:
        found = certificate.verify(cert.read_text(encoding="ascii", errors="replace"), public, report_digest=digest)
    except ConformanceError as exc:
        click.echo(f"INVALID: {exc}")
        sys.exit(EXIT_FAILED)
    c = found.claims
    until = datetime.fromtimestamp(c["exp"], UTC).date().isoformat()
    click.echo(f"{'EXPIRED' if found.expired else 'VALID'}: {c['system']['name']} {c['system']['version']}"
               f"{' run by ' + c['sub'] if c.get('sub') else ''}; kit {c['kit']}, standard {c['standard']}; "
               f"{len(c['requirements'])} requirements; issued by {c['iss']}; valid until {until}")
    sys.exit(EXIT_FAILED if found.expired else EXIT_PASSED)


def _usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@conformance.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The exchange folder (the operator's).")
@click.option("--participant", "pid", required=True, help="The participant that runs the certified system.")
@click.argument("cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--operator-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The conformance operator's public key (JWK or PEM).")
def register(root: Path, pid: str, cert: Path, operator_key: Path) -> None:
    """Record a participant's certified system in the directory (then sign it), so the exchange operator and
    everyone reading the directory can see which participants run certified systems."""
    from datetime import UTC, datetime

    from broker import directory as d
    from broker.keys import read_public_key
    from conformance import certificate

    try:
        public, _ = read_public_key(operator_key.read_bytes(), str(operator_key))
        jws = cert.read_text(encoding="ascii", errors="replace").strip()
        found = certificate.verify(jws, public)
        draft = d.load_draft(root)
        participant = draft.participant(pid)
    except SafeguardingExchangeError as exc:
        _usage(str(exc))
    c = found.claims
    if found.expired:
        _usage("the certificate has expired; run the kit again for a new one")
    if c.get("sub") not in (None, pid):
        _usage(f"the certificate was issued for {c['sub']}, not {pid}")
    stamp = lambda seconds: datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")  # noqa: E731
    entry = {"system": c["system"]["name"], "version": c["system"]["version"], "kit": c["kit"],
             "standard": c["standard"], "issued_at": stamp(c["iat"]), "expires_at": stamp(c["exp"]),
             "certificate": jws}
    # One entry per system and kit: a newer certificate replaces the older one.
    participant.certificates = [x for x in participant.certificates
                                if (x["system"], x["kit"]) != (entry["system"], entry["kit"])] + [entry]
    d.save_draft(root, draft)
    click.echo(f"recorded {entry['system']} {entry['version']} for {pid}; sign the directory to publish it")
