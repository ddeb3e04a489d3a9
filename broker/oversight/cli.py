"""`sgx oversight`: replay a scenario on a simulated clock, and show the published rules."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from broker.oversight import report
from broker.oversight import rules as rules_module
from broker.oversight import scenario as scenarios
from broker.oversight.replay import replay as run_replay
from standard.errors import RecoverableBrokerError


@click.group()
def oversight() -> None:
    """Setting-level oversight: the published rules, and replaying scenarios against them.

    \b
    Examples:
      sgx oversight rules
      sgx oversight replay hesley
      sgx oversight replay population --format json --out population.json
      sgx oversight replay hesley --picture hesley.svg
    """


RULES_OPTION = click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
                            help="A rules file instead of the published one (standard/source/oversight-rules.json).")


@oversight.command()
@click.argument("scenario")
@click.option("--seed", type=int, help="Another seed for a shipped or given scenario (the same seed, the same run).")
@click.option("--with", "also", multiple=True, help="Replay another scenario together with it (e.g. population).")
@RULES_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@click.option("--picture", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw each concerning or escalated setting's signals with its escalations marked (.svg or .png).")
@click.option("--all", "all_settings", is_flag=True, help="List every setting in the text report.")
@click.option("--through-exchange", is_flag=True,
              help="Send every signal as a signed standard message through the embedded exchange and count what "
                   "the host authorities' nodes received, in the order the signals arrive, on every core the run "
                   "may use (about 550 messages a second on two cores: the national year in about 4 minutes).")
def replay(scenario: str, seed: int | None, also: tuple[str, ...], rules_path: Path | None, fmt: str,
           out: Path | None, picture: Path | None, all_settings: bool, through_exchange: bool) -> None:
    """Replay SCENARIO (hesley, population, national or a scenario file) and report each escalation and when.

    The clock is simulated: every signal is taken when it arrives and the statutory clocks tick every midnight.
    By default the engine reads the scenario's signals directly; --through-exchange makes each one a standard
    message, signed, validated, routed and verified by the exchange, and reads what the host's nodes received.
    """
    if picture is not None and picture.suffix.lower() not in (".svg", ".png"):
        raise click.UsageError(f"--picture {picture}: the picture is drawn as .svg or .png; name the file so")
    rules = rules_module.load(rules_path) if rules_path else rules_module.published()
    loaded = scenarios.load(scenario, seed=seed)
    if also:
        # The others are generated over the first one's period, so every setting is watched for the same time.
        months = (loaded.end.year - loaded.start.year) * 12 + loaded.end.month - loaded.start.month
        loaded = scenarios.combine(loaded, *(scenarios.load(name, start=loaded.start.date(), months=months)
                                             for name in also), name=loaded.name)
    timeline = None
    if through_exchange:
        from broker.oversight.exchange import received_timeline
        from broker.workers import available_cores

        timeline, counts = received_timeline(loaded, processes=available_cores())
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(counts["refusals"].items()))
        refused = f", {counts['refused']} refused by the exchange ({reasons})" if counts["refused"] else ""
        click.echo(f"through the exchange: {counts['sent']} messages sent, {counts['received']} received by the "
                   f"host authorities' nodes{refused}", err=True)
    result = run_replay(loaded, rules, timeline)
    text = (orjson.dumps(report.as_json(result), option=orjson.OPT_INDENT_2).decode() + "\n" if fmt == "json"
            else report.as_text(result, all_settings=all_settings))
    if out:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)
    if picture is not None:
        from broker.oversight.picture import draw  # matplotlib is slow to import; only when a picture is asked

        draw(result, picture)
        click.echo(f"drew {picture}", err=True)


@oversight.command("rules")
@RULES_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show_rules(rules_path: Path | None, fmt: str) -> None:
    """Show the published rules and statutory clocks (or check a rules file: it is refused if not valid)."""
    rules = rules_module.load(rules_path) if rules_path else rules_module.published()
    path = rules_path or rules_module.RULES_FILE
    if fmt == "json":
        click.echo(path.read_text(encoding="utf-8"), nl=False)
        return
    click.echo(f"{rules.id} {rules.version} ({rules.status})")
    for rule in rules.rules:
        limit = f"at least {rule.min_weight:g}"
        if rule.per_child_year:
            limit += f" and {rule.per_child_year:g} per child placed per year"
        if rule.min_sources:
            limit += f", from {rule.min_sources} or more sources"
        if rule.factor:
            limit += f", {rule.factor:g} times the previous {rule.baseline_days} days' rate"
        click.echo(f"{rule.id} ({rule.scope}): {rule.title}\n  {', '.join(sorted(rule.kinds))}\n"
                   f"  in {rule.window_days} days: {limit}; quiet {rule.rearm_days} days after firing; escalates as "
                   f"{rule.reason}")
    for clock in rules.clocks:
        click.echo(f"{clock.id}: {clock.title}\n  source: {clock.source}\n  alerts: {', '.join(clock.to)}")


@oversight.command("run")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The exchange folder (the node's inbox, outbox and keys).")
@click.option("--participant", "pid", required=True, help="The host local authority, e.g. la-371.")
@click.option("--transport", "url", default=None, help="amqp://user:password@host/vhost of this participant, as "
              "for 'sgx node run'; default: the folder's embedded queues.")
@RULES_OPTION
@click.option("--once", is_flag=True, help="One pass, then stop.")
@click.option("--interval", type=click.IntRange(min=5), default=300, show_default=True,
              help="Seconds between passes when running continuously beside 'sgx node run'.")
def run(root: Path, pid: str, url: str | None, rules_path: Path | None, once: bool, interval: int) -> None:
    """Oversee the settings in a host authority's area from what its nodes received, and send each new escalation
    as a signed message through the exchange (to the host LADO, host ICB, regulators and every placing authority
    with a child at the setting, each told only of its own children; the host LA's officers see it on their
    inbox's Sent pages).

    Statutory clock alerts (missing Regulation 44/45 reports, LADO notifications not made, late Regulation 40
    notices) go the same way, as escalations with the reason statutory-clock."""
    from broker.cli import _stoppable, exchange_folder
    from broker.oversight.node import run_pass

    rules = rules_module.load(rules_path) if rules_path else rules_module.published()
    with _stoppable() as stop:
        if not once:
            click.echo(f"overseeing the settings of {pid} every {interval} s under rules {rules.version}; Ctrl-C "
                       "or SIGTERM stops after the pass in hand", err=True)
        while True:
            folder = exchange_folder(root, url)
            directory_ = folder.load_directory()
            outbox = folder.outbox(pid)
            result = run_pass(root, directory_, pid, rules, outbox)
            sent = 0
            if outbox.pending():  # this pass's, and any an earlier pass could not send
                try:
                    transport = folder.transport()
                    try:
                        sent = outbox.drain(transport)
                    finally:
                        transport.close()
                except RecoverableBrokerError as exc:
                    click.echo(f"the exchange cannot be reached now ({exc}); the escalations wait in the outbox and "
                               "go with the next pass", err=True)
            for message_id, e in result.escalations:
                click.echo(f"escalation {e.setting} {e.rule} window {e.window_start.date()} to {e.window_end.date()}"
                           f": {len(e.signal_ids)} signals; message {message_id}")
            for alert in result.alerts:
                click.echo(f"alert {alert.clock} {alert.setting}: {alert.detail} (due {alert.due.date()})")
            click.echo(f"{result.signals} signals read; {len(result.escalations)} new escalation(s) and "
                       f"{len(result.alerts)} new alert(s) sent ({sent} confirmed by the exchange); "
                       f"{len(result.findings)} finding(s)")
            if once or stop.wait(interval):
                return
