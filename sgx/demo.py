"""`sgx demo`: the whole flow that exists today, on this machine, with invented data."""

from __future__ import annotations

import copy
from pathlib import Path

import click

from standard import catalogue as cat
from standard.generate.examples import SCENARIOS
from standard.validator import FULL, HOT_PATH, Validator


def _recipients(event: cat.Event) -> str:
    parts = []
    for r in event.recipients:
        text = r.role + ("" if r.of == "setting" else f" (of {r.of})")
        parts.append(text + (f" when {r.condition}" if r.condition else ""))
    return ", ".join(parts)


@click.command()
@click.option("--site", "site_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="Where to write the standard's web pages.")
def demo(site_dir: Path) -> None:
    """Build, validate and route-plan one message of every event, show what a broken one reports,
    and publish the standard's pages."""
    full, hot = Validator(FULL), Validator(HOT_PATH)
    click.secho("1. One message of every event, built from invented data and validated", bold=True)
    for name, make in SCENARIOS.items():
        message = make(name)
        event = cat.get_event(message["entry"][0]["resource"]["eventCoding"]["code"])
        verdict = "valid" if full.is_valid(message) and hot.is_valid(message) else "INVALID"
        click.echo(f"   {name:42} {verdict:7} -> {_recipients(event)}")

    click.secho("\n2. A broken placement message: what the sender is told (no personal data echoed)", bold=True)
    broken = copy.deepcopy(SCENARIOS["placement-started-childrens-home"]("placement-started-childrens-home"))
    patient = next(e["resource"] for e in broken["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["identifier"][1]["value"] = "9990000019"
    patient["birthDate"] = "14/05/2012"
    del broken["timestamp"]
    for finding in full.iter_findings(broken):
        click.echo(f"   {finding.code:22} {finding.location}\n   {'':22} {finding.message}")

    click.secho("\n3. The standard's pages, for vendors and practitioners", bold=True)
    from standard.generate.site import write_site

    pages = write_site(site_dir)
    click.echo(f"   {len(pages)} pages written; open {site_dir / 'index.html'} in a browser")
    click.echo("\nSigned routing between participants is the next part of the exchange to land; see docs/STATUS.md.")
