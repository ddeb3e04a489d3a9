"""Web inbox response times with 100,000 messages in a participant's store: the list (unfiltered and filtered),
a message page and a setting page, each requested 100 times through the application (in process, so the figure
is the inbox's own work: queries, case note and page). Target: p95 under 200 ms for each.

Run: python bench/bench_inbox.py [--messages N] [--write]
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from argon2 import PasswordHasher
from results import add_rows

from broker.inbox import users
from broker.inbox.app import create_app
from broker.inbox.store import InboxStore
from broker.node import _SCHEMA as NODE_SCHEMA
from standard import artefacts

HEADER = "| date | messages | sync s | list p95 ms | filtered p95 ms | child p95 ms | message p95 ms | setting p95 ms |"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway account in a temporary store
TEMPLATES = ["placement-started-childrens-home", "serious-incident-police", "placement-ended-allegation",
             "concern-notification-whistleblowing", "allegation-notification-cross-boundary"]


def fill(path: Path, count: int) -> None:
    """A node inbox of `count` messages: the examples, each copy with its own id, child and one of 400 settings."""
    templates = [orjson.loads((artefacts.EXAMPLES / f"{n}.json").read_bytes()) for n in TEMPLATES]
    db = sqlite3.connect(path)
    db.executescript(NODE_SCHEMA)
    rows = []
    for i in range(count):
        text = orjson.dumps(templates[i % len(templates)]).decode()
        text = text.replace("SC900001", f"SC9{i % 400:05d}").replace('"C00001"', f'"C{i % 20000:05d}"')
        message = orjson.loads(text)
        message["identifier"]["value"] = f"urn:uuid:00000000-0000-4000-8000-{i:012d}"
        header = message["entry"][0]["resource"]
        rows.append((message["identifier"]["value"], header["eventCoding"]["code"],
                     header["sender"]["identifier"]["value"], f"2026-{1 + i * 11 // count:02d}-01T00:00:00+00:00",
                     "verified", "{}", orjson.dumps(message)))
    db.executemany("INSERT INTO inbox VALUES (?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()


def p95(client, path: str, runs: int = 100) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path, base_url="https://localhost")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        node, web = Path(folder) / "node.db", Path(folder) / "web.db"
        fill(node, args.messages)
        store = InboxStore(web, node)
        start = time.perf_counter()
        store.sync()
        synced = time.perf_counter() - start
        users._hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
        users.add_user(store, "officer@example.org", "Officer", "officer", PASSWORD)
        app = create_app(store, "la-371", key=b"k" * 32, now=lambda: datetime.now(UTC))
        client = app.test_client()
        page = client.get("/sign-in", base_url="https://localhost").data
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        client.post("/sign-in", base_url="https://localhost", headers={"Referer": "https://localhost/sign-in"},
                    data={"email": "officer@example.org", "password": PASSWORD, "csrf_token": token})
        some_id = f"urn:uuid:00000000-0000-4000-8000-{args.messages // 2:012d}"
        figures = {
            "list": p95(client, "/"),
            "filtered": p95(client, "/?event=serious-incident&setting=SC900007&status=new"),
            "child": p95(client, "/?child=886/C00042"),
            "message": p95(client, f"/messages/{some_id}"),
            "setting": p95(client, "/settings/SC900007"),
        }
    print(f"{args.messages} messages, synced in {synced:.1f} s; p95 ms: "
          + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
    if args.write:
        day = datetime.now(UTC).date().isoformat()
        add_rows(HEADER, [f"| {day} | {args.messages} | {synced:.1f} | {figures['list']:.1f} | "
                          f"{figures['filtered']:.1f} | {figures['child']:.1f} | {figures['message']:.1f} | "
                          f"{figures['setting']:.1f} |"])


if __name__ == "__main__":
    main()
