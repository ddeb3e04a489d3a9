"""The SSDA903 XML reader: the public sample, and files built to attack or break it."""

from __future__ import annotations

import time
from pathlib import Path

from adapters.base import Problem, Record
from adapters.ssda903_xml import Ssda903XmlReader
from tests.conftest import PUBLIC_SAMPLES

SAMPLE = PUBLIC_SAMPLES / "ssda903" / "xml" / "fake_903.xml"


def read(path: Path):
    items = list(Ssda903XmlReader().read(path))
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Problem)]


def test_public_sample_reads_as_header_and_episode_records():
    records, problems = read(SAMPLE)
    headers = [r for r in records if r.table == "header"]
    episodes = [r for r in records if r.table == "episodes"]
    assert len(headers) == 253 and episodes
    assert {r.values["CHILD"] for r in episodes} <= {r.values["CHILD"] for r in headers}
    assert "PLACE" in episodes[0].values and episodes[0].values["PLACE"]
    assert [p.code for p in problems] == []


def test_external_entity_is_refused_and_nothing_read(tmp_path):
    path = tmp_path / "xxe.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                    "<EXPSSDA903><CHILD><HEADER><CHILDID>&e;</CHILDID></HEADER></CHILD></EXPSSDA903>")
    records, problems = read(path)
    assert records == [] and [p.code for p in problems] == ["xml-doctype"]


def test_billion_laughs_is_refused_quickly(tmp_path):
    lol = "".join(f'<!ENTITY l{i} "{"&l" + str(i - 1) + ";" * 1 if i else "lol"}' + (
        f"&l{i - 1};" * 9 if i else "") + '">' for i in range(10))
    path = tmp_path / "lol.xml"
    path.write_text(f"<?xml version='1.0'?><!DOCTYPE x [{lol}]><EXPSSDA903>&l9;</EXPSSDA903>")
    start = time.monotonic()
    records, problems = read(path)
    assert time.monotonic() - start < 10  # refused at the door: no expansion (which would take minutes) happened
    assert records == [] and [p.code for p in problems] == ["xml-doctype"]


def test_truncated_file_keeps_what_came_before_and_says_where_it_broke(tmp_path):
    text = SAMPLE.read_text(encoding="ascii")
    path = tmp_path / "truncated.xml"
    path.write_text(text[: len(text) // 2])
    records, problems = read(path)
    assert records and problems[-1].code == "xml-malformed"
