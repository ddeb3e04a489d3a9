"""Oversight: a national-scale year replayed, and how well the rules do over many seeds of the scenarios.

Run: python bench/bench_oversight.py [--hesley-seeds 20] [--population-seeds 10] [--no-held-out] [--write]

- national: 3,000 ordinary settings in 150 host authorities for a year, every placement, incident, allegation,
  concern and Regulation 44/45 report (about 130,000 signals), replayed on a simulated clock with a tick every
  midnight. Target: under 60 s. Also the delay between a report falling due and its alert (target: within a day).
- hesley: the Hesley-shaped scenario with other seeds (the same counts, other days and settings for each
  signal): how many of its settings are escalated within three months of their first signal (target: all).
- population: the 240 ordinary settings over three years with other seeds: false escalations per 100
  setting-years (target: under 1), mean and worst seed.

The rules are calibrated looking at the first seeds (1 to N: the tuning seeds); the next N seeds (N+1 to 2N) are
held out, never looked at while choosing thresholds, and reported beside them, so the figures say how well the
rules do on seeds they were not fitted to.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from results import add_rows

from broker.oversight import scenario
from broker.oversight.replay import replay

HEADER = "| date | national signals | settings | generate s | replay s | alert delay max"
EXCHANGE = "| date | Hesley-shaped messages through the exchange"
QUALITY = "| date | rules | Hesley-shaped seeds"
LARGER = "| date | scenario | messages sent | deliveries received by host nodes | refused | seconds (both cores)"


def national() -> dict:
    started = time.perf_counter()
    loaded = scenario.load("national")
    generated = time.perf_counter() - started
    started = time.perf_counter()
    result = replay(loaded, keep_signals=False)
    replayed = time.perf_counter() - started
    delays = [(a.raised_at - a.due).total_seconds() / 3600 for s in result.settings.values() for a in s.alerts
              if a.clock in ("CLK-REG44", "CLK-REG45", "CLK-LADO")]
    return {"signals": len(loaded.timeline), "settings": len(result.settings), "generate": generated,
            "replay": replayed, "alerts": len(delays), "delay_max_h": max(delays, default=0.0),
            "false": result.false_escalations_per_100_setting_years(), "rules": result.rules_version}


def hesley(seeds: range) -> dict:
    days, missed, total, late = [], 0, 0, []
    for seed in seeds:
        result = replay(scenario.load("hesley", seed=seed), keep_signals=False)
        for s in result.concerning():
            total += 1
            missed += not s.escalated_within_three_months
            if not s.escalated_within_three_months:
                late.append(seed)
            if s.first_escalation:
                days.append((s.first_escalation - s.first_signal).days)
    return {"seeds": seeds, "settings": total, "missed": missed, "median_days": statistics.median(days),
            "max_days": max(days), "late_seeds": sorted(set(late))}


def population(seeds: range) -> dict:
    rates = {seed: replay(scenario.load("population", seed=seed), keep_signals=False)
             .false_escalations_per_100_setting_years() for seed in seeds}
    worst = max(rates, key=rates.get)
    return {"seeds": seeds, "mean": statistics.mean(rates.values()), "max": rates[worst], "worst_seed": worst,
            "over": sorted(seed for seed, rate in rates.items() if rate >= 1.0)}


def _span(seeds: range) -> str:
    return f"{seeds.start}-{seeds.stop - 1}"


def through_exchange(name: str = "hesley") -> dict:
    """A shipped scenario sent through the embedded exchange (as `sgx oversight replay --through-exchange`, with
    every core this process may use), then replayed on what the host authorities' nodes received."""
    from broker.oversight.exchange import received_timeline
    from broker.workers import available_cores

    loaded = scenario.load(name)
    started = time.perf_counter()
    timeline, counts = received_timeline(loaded, processes=available_cores())
    seconds = time.perf_counter() - started
    direct, through = replay(loaded), replay(loaded, timeline=timeline)
    same = sorted((e.setting, e.rule, e.window_end) for s in direct.settings.values() for e in s.escalations) == \
        sorted((e.setting, e.rule, e.window_end) for s in through.settings.values() for e in s.escalations)
    return {"scenario": name, "messages": counts["sent"], "received": counts["received"],
            "refused": counts["refused"], "seconds": seconds, "rate": counts["sent"] / seconds, "same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hesley-seeds", type=int, default=20)
    parser.add_argument("--population-seeds", type=int, default=10)
    parser.add_argument("--held-out", action=argparse.BooleanOptionalAction, default=True,
                        help="also replay the next seeds, not looked at while calibrating (default: yes)")
    parser.add_argument("--write", action="store_true", help="add the rows to bench/RESULTS.md")
    parser.add_argument("--through-exchange", choices=["hesley", "population", "national"],
                        help="only send this scenario through the exchange and time it (population: about a minute "
                             "on two cores; national: several minutes)")
    args = parser.parse_args()
    if args.through_exchange:
        x = through_exchange(args.through_exchange)
        print(f"through the exchange: {args.through_exchange}, {x['messages']:,} messages sent, {x['received']:,} "
              f"received by the host authorities' nodes, {x['refused']} refused, in {x['seconds']:.1f} s "
              f"({x['rate']:.0f}/s); same escalations as on signals: {x['same']}")
        if args.write:
            add_rows(LARGER, [f"| {datetime.now(UTC).date().isoformat()} | {args.through_exchange} | "
                              f"{x['messages']:,} | {x['received']:,} | {x['refused']} | {x['seconds']:.1f} | "
                              f"{x['rate']:.0f} | {'yes' if x['same'] else 'NO'} |"])
        return
    n = national()
    print(f"national: {n['signals']:,} signals, {n['settings']:,} settings; generated in {n['generate']:.1f} s, "
          f"replayed in {n['replay']:.1f} s (target < 60 s); {n['alerts']} clock alerts, raised at most "
          f"{n['delay_max_h']:.1f} h after falling due; {n['false']:.2f} false escalations per 100 setting-years")
    sets = [("tuning", range(1, args.hesley_seeds + 1), range(1, args.population_seeds + 1))]
    if args.held_out:
        sets.append(("held out", range(args.hesley_seeds + 1, 2 * args.hesley_seeds + 1),
                     range(args.population_seeds + 1, 2 * args.population_seeds + 1)))
    quality = []
    for name, hesley_seeds, population_seeds in sets:
        h, p = hesley(hesley_seeds), population(population_seeds)
        quality.append((name, h, p))
        print(f"hesley, seeds {_span(hesley_seeds)} ({name}): {h['settings'] - h['missed']} of {h['settings']} "
              f"settings escalated within three months (late: seeds {h['late_seeds'] or 'none'}); days to first "
              f"escalation median {h['median_days']}, max {h['max_days']}")
        print(f"population, seeds {_span(population_seeds)} ({name}): false escalations per 100 setting-years "
              f"mean {p['mean']:.2f}, worst {p['max']:.2f} (seed {p['worst_seed']}); seeds at 1 or over: "
              f"{p['over'] or 'none'}")
    x = through_exchange()
    print(f"through the exchange: {x['messages']} Hesley-shaped messages signed, validated, routed, verified and "
          f"read back in {x['seconds']:.1f} s ({x['rate']:.0f}/s); same escalations as on signals: {x['same']}")
    if args.write:
        today = datetime.now(UTC).date().isoformat()
        add_rows(HEADER, [f"| {today} | {n['signals']:,} | {n['settings']:,} | {n['generate']:.1f} | "
                          f"{n['replay']:.1f} | {n['delay_max_h']:.1f} h | {n['false']:.2f} |"])
        add_rows(QUALITY, [f"| {today} | {n['rules']} | {_span(h['seeds'])} ({name}) | {h['settings'] - h['missed']} "
                           f"of {h['settings']} | {h['median_days']} | {h['max_days']} | {_span(p['seeds'])} "
                           f"({name}) | {p['mean']:.2f} | {p['max']:.2f} |" for name, h, p in quality])
        add_rows(EXCHANGE, [f"| {today} | {x['messages']} | {x['seconds']:.1f} | {x['rate']:.0f} | "
                            f"{'yes' if x['same'] else 'NO'} |"])


if __name__ == "__main__":
    main()
