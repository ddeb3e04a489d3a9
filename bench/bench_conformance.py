"""The messages kit on a vendor's whole export: how many messages a second it checks (target: 1,000).

Writes N distinct ~5 KB placement messages (the validator benchmark's typical message) into a folder and runs the
kit's standard group over them, parsing and validating every file. Run: python bench/bench_conformance.py
[--messages N] [--write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_validator import typical_message
from results import add_rows

from conformance.kits import KITS
from conformance.kits.messages import MessagesContext
from conformance.model import Result, run_suite

HEADER = "| date | messages | seconds | messages/s | results |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.messages):
            (Path(folder) / f"m{i:06d}.json").write_bytes(typical_message(i))
        suite = KITS["messages"].build()
        start = time.perf_counter()
        report = run_suite(suite, MessagesContext(Path(folder)))
        seconds = time.perf_counter() - start
    results = ", ".join(f"{report.count(r)} {r.value}" for r in Result if report.count(r))
    rate = args.messages / seconds
    print(f"{args.messages} messages in {seconds:.2f} s: {rate:.0f} messages/s ({results})")
    if args.write:
        add_rows(HEADER, [f"| {datetime.now(UTC).date().isoformat()} | {args.messages} | {seconds:.2f} | "
                          f"{rate:.0f} | {results} |"])


if __name__ == "__main__":
    main()
