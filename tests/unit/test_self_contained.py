"""A clone is complete in itself: nothing the project runs or tests reads a folder beside the checkout."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A path that climbs out of the checkout into a sibling folder, written the ways Python and shell write it.
OUTSIDE = re.compile(r"""\.\./shared|parents\[\d\]\s*\.parent|["']shared["']\s*/""")
SCANNED = ("adapters", "bench", "broker", "conformance", "scripts", "sgx", "standard", "tests", ".ci")


def _sources():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "node_modules" not in path.parts and (
                    path.suffix in {".py", ".sh", ".toml", ".cfg"} or path.parent.name in {"scripts", ".ci"}):
                yield path


def test_no_source_reads_a_folder_outside_the_checkout():
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in _sources()
                 for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                 if OUTSIDE.search(line) and p.name != "test_self_contained.py"]
    assert offenders == []


def test_the_pattern_catches_the_ways_a_path_leaves_the_checkout():
    for line in ['SAMPLE = Path(__file__).resolve().parents[1].parent / "x"', 'open("../shared/data/a.csv")',
                 'BASE = ROOT / "shared" / "data"']:
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search('PUBLIC_SAMPLES = Path(__file__).resolve().parent / "corpus" / "public"')
