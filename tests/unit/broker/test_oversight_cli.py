"""`sgx oversight` from the command line: replay reports as text, JSON and a picture; clear refusals."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson
from click.testing import CliRunner

from sgx.cli import cli


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def test_replay_reports_each_escalation_and_when_it_fired_as_text():
    out = run("oversight", "replay", "hesley")
    assert "escalated within three months of their first signal: 3 of 3" in out
    for urn in ("SC990001", "SC990002", "SC990003"):
        assert f"{urn} Hesley-shaped setting" in out
    assert "OVR-PROVIDER-HARM" in out and "window 20" in out and "urn:uuid:" in out


def test_replay_as_json_names_rule_window_and_signals(tmp_path):
    out = tmp_path / "hesley.json"
    run("oversight", "replay", "hesley", "--format", "json", "--out", out)
    report = orjson.loads(out.read_bytes())
    assert report["summary"]["concerning_escalated_within_three_months"] == 3
    first = report["settings"][0]
    assert first["days_to_first_escalation"] <= 92
    escalation = first["escalations"][0]
    assert set(escalation) >= {"rule", "rules_version", "window", "fired_at", "signals", "total", "threshold"}
    assert all(s.startswith("urn:uuid:") for s in escalation["signals"])


def test_replay_draws_a_timeline_picture(tmp_path):
    svg = tmp_path / "hesley.svg"
    run("oversight", "replay", "hesley", "--picture", svg)
    root = ET.fromstring(svg.read_bytes())  # noqa: S314 - our own file, just written
    assert root.tag.endswith("svg")
    text = svg.read_text(encoding="utf-8")
    assert "OVR-PROVIDER-HARM, day" in text and "SC990003 Hesley-shaped setting 3" in text
    assert "judged good or outstanding" in text  # the judgements are drawn beside the signals
    again = tmp_path / "again.svg"
    run("oversight", "replay", "hesley", "--picture", again)
    assert again.read_bytes() == svg.read_bytes()
    png = tmp_path / "hesley.png"
    run("oversight", "replay", "hesley", "--picture", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_picture_of_another_type_an_unknown_scenario_and_a_broken_rules_file_are_refused(tmp_path):
    assert "drawn as .svg or .png" in run("oversight", "replay", "hesley", "--picture", tmp_path / "x.gif", code=2)
    assert "no such scenario" in run("oversight", "replay", "atlantis", code=2)
    for content, expected in (("[1]", "is a JSON object"), ('{"kind": "concentrated"}', "has no 'start'"),
                              ('{"kind": "concentrated", "start": "2018-13-01", "months": 3, "name": "x", "seed": 1}',
                               "cannot be used (month must be in 1..12)"), ("{", "not JSON")):
        scenario_file = tmp_path / "scenario.json"
        scenario_file.write_text(content, encoding="utf-8")
        assert expected in run("oversight", "replay", scenario_file, code=2)
    rules = tmp_path / "rules.json"
    rules.write_text('{"id": "x"}', encoding="utf-8")
    out = run("oversight", "rules", "--rules", rules, code=2)
    assert "rules.json" in out and "required property" in out and "Traceback" not in out


def test_rules_are_shown_as_a_person_reads_them():
    out = run("oversight", "rules")
    assert "OVR-ALLEGATIONS (setting)" in out and "per child placed per year" in out
    assert "CLK-REG44" in out and "regulation 44" in out


def test_oversight_run_says_what_it_does_and_stops_cleanly_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = tmp_path / "ex"
    for args in (["directory", "init"], ["directory", "keygen", "--participant", "la-371"],
                 ["directory", "keygen", "--participant", "router"], ["directory", "sign"]):
        run(*args, "--dir", root)
    sgx = str(Path(sys.executable).parent / "sgx")
    process = subprocess.Popen([sgx, "oversight", "run", "--dir", str(root), "--participant", "la-371"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.monotonic() + 60, ""
        while "overseeing the settings of la-371" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "overseeing the settings of la-371" in seen
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err[-500:]
    assert "0 signals read" in out and "Traceback" not in err
