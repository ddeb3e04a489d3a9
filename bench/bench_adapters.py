"""`sgx adapt ssda903` on a 100,000-episode export: from CSV files to validated messages queued in the outbox
and signed onto the exchange's ingress (embedded transport), as an LA would run it.

The export is generated from the public fake SSDA903 sample (tests/corpus/public/ssda903/csv_validator_fake):
its 5,050 episodes and 2,675 children are repeated with fresh child ids until there are 100,000 episodes. It is
written to a temporary folder, never committed.

Two directories bound the range: `worst` puts every placement's setting in the directory in another authority's
area, so every placement is notified (started, and ended when it has ended); `typical` puts 15% of the settings
there (an assumed share of placements in residential settings out of area; `--dry-run` shows an LA its own).

Run: python bench/bench_adapters.py [--episodes 100000] [--scenario worst|typical|both] [--repeat 5] [--write]
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from click.testing import CliRunner
from results import add_rows

from sgx.cli import cli

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "public" / "ssda903" / "csv_validator_fake"
def generate(folder: Path, episodes_wanted: int) -> tuple[Path, Path, list[str]]:
    """Header and episodes CSV files with `episodes_wanted` episodes; returns them and the URNs used."""
    with open(SAMPLE / "header.csv", newline="", encoding="utf-8") as fh:
        header_rows = list(csv.DictReader(fh))
    with open(SAMPLE / "episodes.csv", newline="", encoding="utf-8") as fh:
        episode_rows = list(csv.DictReader(fh))
    header, episodes = folder / "header.csv", folder / "episodes.csv"
    urns: set[str] = set()
    with open(header, "w", newline="") as hf, open(episodes, "w", newline="") as ef:
        hw = csv.DictWriter(hf, fieldnames=list(header_rows[0]))
        ew = csv.DictWriter(ef, fieldnames=list(episode_rows[0]))
        hw.writeheader()
        ew.writeheader()
        written, copy = 0, 0
        while written < episodes_wanted:
            for row in header_rows:
                hw.writerow({**row, "CHILD": f"{row['CHILD']}-{copy}"})
            for row in episode_rows:
                if written == episodes_wanted:
                    break
                ew.writerow({**row, "CHILD": f"{row['CHILD']}-{copy}"})
                if row["URN"]:
                    urns.add(row["URN"])
                written += 1
            copy += 1
    return header, episodes, sorted(urns)


def exchange(folder: Path, urns: list[str], share: float) -> Path:
    root = folder / "ex"
    runner = CliRunner()
    runner.invoke(cli, ["directory", "init", "--dir", str(root)], catch_exceptions=False)
    for pid in ("la-886", "router"):
        runner.invoke(cli, ["directory", "keygen", "--dir", str(root), "--participant", pid], catch_exceptions=False)
    draft = root / "directory.draft.json"
    data = orjson.loads(draft.read_bytes())
    hosts = ["la-371", "la-373", "la-352", "la-383"]
    chosen = urns[: int(len(urns) * share)]
    data["settings"] = [{"urn": u, "name": f"Setting {u}", "type": "childrens-home", "host_la": hosts[i % 4],
                         "host_icb": None, "regulators": ["ofsted"], "provider": None, "police": None,
                         "postcode": None} for i, u in enumerate(chosen)]
    draft.write_bytes(orjson.dumps(data))
    runner.invoke(cli, ["directory", "sign", "--dir", str(root)], catch_exceptions=False)
    return root


def machine_gauge() -> float:
    """Seconds for the slower of two copies of a fixed piece of work run at once (bench/machine_gauge.py): this
    machine's speed changes from hour to hour, so each run says how fast the machine was just before it."""
    import subprocess
    import sys

    gauge = Path(__file__).with_name("machine_gauge.py")
    running = [subprocess.Popen([sys.executable, str(gauge)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [(process.communicate()[0], process.returncode) for process in running]
    if any(code != 0 for _, code in outputs):
        raise SystemExit(f"the machine gauge failed (its error is above); run python {gauge} to see it alone")
    return max(float(output) for output, _ in outputs)


def run(episodes: int, share: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        header, episodes_file, urns = generate(folder, episodes)
        root = exchange(folder, urns, share)
        start = time.perf_counter()
        result = CliRunner().invoke(cli, ["adapt", "ssda903", "--dir", str(root), "--la", "886", "--no-progress",
                                          str(header), str(episodes_file)], catch_exceptions=False)
        seconds = time.perf_counter() - start
        summary = orjson.loads(io.StringIO(result.stdout).read().strip().splitlines()[-1])
        return {"episodes": episodes, "share": share, "seconds": seconds, "summary": summary,
                "megabytes": (header.stat().st_size + episodes_file.stat().st_size) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--scenario", choices=["worst", "typical", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Run each scenario this many times; the row gives the median run and the range (this "
                             "machine's speed varies from run to run).")
    parser.add_argument("--write", action="store_true", help="Add the results to their table in bench/RESULTS.md.")
    args = parser.parse_args()
    scenarios = {"worst": 1.0, "typical": 0.15}
    chosen = scenarios if args.scenario == "both" else {args.scenario: scenarios[args.scenario]}
    lines = []
    for name, share in chosen.items():
        runs = []
        for _ in range(args.repeat):
            gauge = machine_gauge()
            runs.append({**run(args.episodes, share), "gauge": gauge})
            print(f"{name}: {runs[-1]['seconds']:.1f} s (machine gauge {gauge:.2f} s)", flush=True)
        r = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
        s = r["summary"]
        built = sum(s["messages_built"].values())
        gauges = f"machine gauge {min(x['gauge'] for x in runs):.2f} to {max(x['gauge'] for x in runs):.2f} s"
        spread = (f" (median of {len(runs)}: {min(x['seconds'] for x in runs):.1f} to "
                  f"{max(x['seconds'] for x in runs):.1f} s; {gauges})" if len(runs) > 1 else f" ({gauges})")
        line = (f"| {datetime.now(UTC).date()} | {name} | {r['episodes']:,} | {r['megabytes']:.1f} MB | "
                f"{s['rows_read']:,} | {built:,} | {s['sent']:,} | {r['seconds']:.1f} s{spread} | "
                f"{built / r['seconds']:,.0f} |")
        print(line, flush=True)
        lines.append(line)
    if args.write:
        add_rows("| date | scenario | episodes |", lines)


if __name__ == "__main__":
    main()
