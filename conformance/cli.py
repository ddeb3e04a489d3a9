"""`sgx conformance`: the requirements of the standard and the kits that prove a system meets them.

Exit codes: 0 every test passed (skips carry their reasons), 1 a test failed or errored, 2 usage or set-up error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from sgx.errors import ConformanceError

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@click.group()
def conformance() -> None:
    """Prove a system sends and receives Safeguarding Exchange messages as the standard requires."""


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
@click.option("--kit", type=click.Choice(["messages"]), required=True, help="Which kit to run.")
@click.option("--messages", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="messages kit: the folder of messages the system produced (<scenario id>.json for each "
                   "scenario; see `conformance/scenarios/`).")
@click.option("--scenario", "selected", multiple=True, help="Only these scenarios (repeatable); the others are "
              "skipped with that reason.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.json, report.xml (JUnit) and report.html here.")
@click.option("--quiet", is_flag=True, help="Print only the summary line.")
def run(kit: str, folder: Path | None, selected: tuple[str, ...], report_dir: Path | None, quiet: bool) -> None:
    """Run a kit against a system's output and report every test's result.

    \b
    Example:
      sgx conformance run --kit messages --messages out/ --report-dir reports/
    """
    from conformance import report as fmt
    from conformance.kits import KITS
    from conformance.kits.messages import MessagesContext
    from conformance.model import run_suite
    from conformance.scenarios import scenarios

    if folder is None:
        _usage("the messages kit needs --messages FOLDER: the messages your system produced")
    if not folder.is_dir():
        _usage(f"{folder} is not a folder; give the folder holding the messages your system produced")
    known = {s.id for s in scenarios()}
    unknown = sorted(set(selected) - known)
    if unknown:
        _usage(f"unknown scenario(s) {', '.join(unknown)}; the kit ships: {', '.join(sorted(known))}")
    try:
        suite = KITS[kit].build()
        context = MessagesContext(folder, set(selected) or None)
        result = run_suite(suite, context, on_test=lambda r: None if quiet else click.echo(fmt.terminal_line(r)))
    except ConformanceError as exc:
        _usage(str(exc))
    result.context = {"messages": str(folder), "files": len(context.files),
                      "scenarios": ", ".join(sorted(selected)) or "all"}
    click.echo(fmt.summary(result))
    if report_dir is not None:
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
            (report_dir / "report.json").write_bytes(fmt.as_json(result))
            (report_dir / "report.xml").write_bytes(fmt.as_junit(result))
            (report_dir / "report.html").write_text(fmt.as_html(result), encoding="utf-8")
        except OSError as exc:
            _usage(f"cannot write the reports into {report_dir}: {exc.strerror}")
        click.echo(f"reports: {report_dir / 'report.html'} (people), report.json, report.xml (JUnit)")
    sys.exit(EXIT_PASSED if result.passed else EXIT_FAILED)


def _usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)
