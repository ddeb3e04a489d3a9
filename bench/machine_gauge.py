"""A fixed piece of work of the kind an adapter run does, to tell how fast this machine is at the moment.

This machine's speed changes from hour to hour by up to half, and a plain counting loop does not follow it: on
one evening the loop read 2.1 s beside a worst case of 37 s, and 3.4 s beside one of 33 s. So the gauge does what
a run does with a message, using only the libraries the project pins and never the project's own code (an
improvement to the project must not move the gauge): build a nested document of about 4 KB in Python, serialise
and parse it, walk it, check it against a JSON Schema in Rust, sign it with Ed25519 and write it to SQLite in
batches, on the 16 KB pages of the project's message databases. It approximates a run's mix; it is not a copy.
The bench runs two copies at once, as the run uses both cores, and records the slower.

Run: python bench/machine_gauge.py   (prints the seconds one copy took)
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import jsonschema_rs
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOCUMENTS = 8000
_SCHEMA = {
    "type": "object", "required": ["resourceType", "entry"],
    "properties": {"entry": {"type": "array", "items": {
        "type": "object", "required": ["fullUrl", "resource"],
        "properties": {"fullUrl": {"type": "string", "pattern": "^urn:uuid:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"},
                       "resource": {"type": "object", "required": ["resourceType"], "properties": {
                           "id": {"type": "string", "pattern": "^[A-Za-z0-9.-]{1,64}$"},
                           "birthDate": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}}}}}}},
}


def document(i: int) -> dict:
    return {"resourceType": "Bundle", "type": "message", "timestamp": "2026-01-01T00:00:00.000Z", "entry": [
        {"fullUrl": f"urn:uuid:{i:08x}-0000-4000-8000-{n:012x}", "resource": {
            "resourceType": "Patient", "id": f"r{n}", "birthDate": "2011-04-01",
            "meta": {"security": [{"system": "https://example.org/labels", "code": "SAFEGUARDING"}]},
            "identifier": [{"system": "https://example.org/id", "value": f"{i}-{n}"}],
            "extension": [{"url": f"https://example.org/extension-{k}", "valueCoding": {
                "system": "https://example.org/codes", "code": f"K{k}", "display": "A display text of some length"}}
                for k in range(3)],
            "period": {"start": "2020-01-01", "end": "2021-01-01"}}} for n in range(5)]}


def walk(doc: dict) -> int:
    strings, stack = 0, [doc]
    while stack:
        item = stack.pop()
        for value in (item.values() if item.__class__ is dict else item):
            if value.__class__ is str:
                strings += 1
            elif value.__class__ in (dict, list):
                stack.append(value)
    return strings


def gauge(folder: Path) -> float:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    validator = jsonschema_rs.validator_for(_SCHEMA)
    db = sqlite3.connect(folder / "gauge.db", isolation_level=None)
    db.execute("PRAGMA page_size=16384")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB, signature BLOB)")
    start = time.perf_counter()
    rows = []
    for i in range(DOCUMENTS):
        body = orjson.dumps(document(i))
        parsed = orjson.loads(body)
        if not validator.is_valid(parsed) or walk(parsed) < 50:
            raise SystemExit("the gauge's document changed")
        rows.append((i, body, key.sign(body)))
        if len(rows) == 500:
            db.execute("BEGIN")
            db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
            rows = []
    seconds = time.perf_counter() - start
    db.close()
    return seconds


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{gauge(Path(tmp)):.3f}")
