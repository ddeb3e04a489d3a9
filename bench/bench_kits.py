"""All three conformance kits against the project's reference systems, as a vendor runs them: one `sgx conformance
run` after another, each live kit starting (and stopping) its own RabbitMQ node. Target: under 60 s in all.

    python bench/bench_kits.py [--write]

The messages kit checks the six scenario messages (the project's examples); the receiver kit runs against the
project's node (`conformance.reference.receiver`); the sender kit against the project's outbox
(`conformance.reference.sender`). Each run must pass; the time is wall-clock, process start-up included.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from results import add_rows

from broker.keys import SigningKey
from standard import artefacts

ROOT = Path(__file__).resolve().parents[1]
SGX = str(Path(sys.executable).with_name("sgx"))
PY = sys.executable
HEADER = "| date | messages kit s | receiver kit s | sender kit s | total s | results |"
EXAMPLES = {"SCN-PLC-01": "placement-started-childrens-home", "SCN-PLC-02": "placement-started-confidential",
            "SCN-PLC-03": "placement-ended-allegation", "SCN-INC-01": "serious-incident-police",
            "SCN-ALG-01": "allegation-referral-physical", "SCN-CON-01": "concern-notification-whistleblowing"}


def _timed(argv: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    return time.perf_counter() - start, done.returncode, done.stdout.strip().splitlines()[-2:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        out = work / "out"
        out.mkdir()
        for scenario, example in EXAMPLES.items():
            shutil.copy(artefacts.EXAMPLES / f"{example}.json", out / f"{scenario}.json")
        key = SigningKey.generate("bench-key")
        key.save(work / "sut.key")
        public = str(work / "sut.pub.jwk")
        runs = {
            "messages": [SGX, "conformance", "run", "--kit", "messages", "--messages", str(out), "--quiet"],
            "receiver": [SGX, "conformance", "run", "--kit", "receiver", "--quiet", "--sut-key", public,
                         "--sut-run", f"{PY} -m conformance.reference.receiver run {{config}} --key {work / 'sut.key'}",
                         "--sut-stored", f"{PY} -m conformance.reference.receiver stored {{config}}"],
            "sender": [SGX, "conformance", "run", "--kit", "sender", "--quiet", "--sut-key", public, "--sut-send",
                       f"{PY} -m conformance.reference.sender send {{scenario}} {{config}} --key {work / 'sut.key'}"],
        }
        seconds, results = {}, []
        for kit, argv in runs.items():
            seconds[kit], code, said = _timed(argv)
            results.append(f"{kit} exit {code}")
            print(f"{kit}: {seconds[kit]:.1f} s, exit {code}: {' / '.join(said)}")
    total = sum(seconds.values())
    print(f"all three kits: {total:.1f} s (target 60 s)")
    if args.write:
        add_rows(HEADER, [f"| {datetime.now(UTC).date().isoformat()} | {seconds['messages']:.1f} | "
                          f"{seconds['receiver']:.1f} | {seconds['sender']:.1f} | {total:.1f} | "
                          f"{', '.join(results)} |"])


if __name__ == "__main__":
    main()
