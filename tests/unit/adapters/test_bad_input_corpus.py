"""The bad-input corpus (tests/corpus/): every broken file gives findings that name the file, the row or
element and the field, say what to do, and never echo a child's data; good rows still go through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.unit.adapters.conftest import sgx

CORPUS = Path(__file__).parents[2] / "corpus"
HEADER = CORPUS / "ssda903" / "header.csv"
WHISTLE = Path(__file__).parents[3] / "examples" / "mappings" / "whistleblowing-log.toml"
# Values of the synthetic children in the corpus that must never appear in output.
CHILD_DATA = ("CHILDX", "27/03/2010", "14/07/2011", "2010-03-27", "Caf", "32/13/2010", "9th Nov", "03/05/2012",
              "19/09/2009", "08/08/2013", "21/01/2014", "HYPERLINK", "SUM(1+1)", "=1+1", "+cmd", "AB1 2CD")

CASES = [
    # (command and files, messages built, findings by code, (row, field) of the first finding or None)
    (["ssda903", HEADER, "ssda903/episodes_bad_dates.csv"], 1, {"bad-date": 1}, (3, "DECOM")),
    (["ssda903", HEADER, "ssda903/episodes_unknown_codes.csv"], 1, {"bad-code": 2}, (3, "LS")),
    (["ssda903", HEADER, "ssda903/episodes_missing_columns.csv"], 0, {"unknown-table": 1, "missing-table": 1},
     (1, None)),
    (["ssda903", HEADER, "ssda903/episodes_bom_crlf.csv"], 1, {}, None),
    (["ssda903", HEADER, "ssda903/episodes_semicolon.csv"], 0, {"wrong-delimiter": 1, "missing-table": 1}, (1, None)),
    (["ssda903", HEADER, "ssda903/episodes_cp1252.csv"], 2, {"encoding-not-utf8": 1}, (3, None)),
    (["ssda903", HEADER, "ssda903/episodes_utf16.csv"], 1, {"encoding-utf16": 1}, (None, None)),
    (["ssda903", HEADER, "ssda903/episodes_ragged.csv"], 1, {"row-length": 1}, (3, None)),
    (["ssda903", HEADER, "ssda903/episodes_unclosed_quote.csv"], 1, {"malformed-row": 1, "row-length": 50},
     (3, None)),
    (["ssda903", HEADER, "ssda903/episodes_empty.csv"], 0, {"empty-file": 1, "missing-table": 1}, (None, None)),
    (["ssda903-xml", "ssda903_xml/truncated.xml"], 1, {"xml-malformed": 1}, (1, None)),
    (["ssda903-xml", "ssda903_xml/xxe.xml"], 0, {"xml-doctype": 1, "missing-table": 1}, (None, None)),
    (["ssda903-xml", "ssda903_xml/billion_laughs.xml"], 0, {"xml-doctype": 1, "missing-table": 1}, (None, None)),
    (["cin", "cin/xxe.xml"], 0, {"xml-doctype": 1}, (None, None)),
    (["cin", "cin/bad_dates.xml"], 0, {"bad-date": 2, "bad-code": 1}, (1, "PersonBirthDate")),
    (["annex-a", "xlsx/annex_a_formulas_and_errors.xlsx"], 1,
     {"formula-cell": 1, "error-cell": 1, "bad-date": 1, "bad-code": 1}, (3, "Start Date of Most Recent Placement")),
    (["annex-a", "xlsx/annex_a_no_list_8.xlsx"], 0, {"missing-sheet": 1}, (None, None)),
    (["mapped", "mapped/whistleblowing_bad_rows.csv"], 1, {"bad-date": 1, "missing-value": 1}, (3, "Received")),
    (["mapped", "mapped/whistleblowing_cp1252.csv"], 1, {"encoding-not-utf8": 1}, (2, None)),
]


def _command(exchange, case: list, report: Path) -> list:
    command, *files = case
    files = [f if isinstance(f, Path) else CORPUS / f for f in files]
    who = ["--sender", "la-886", "--mapping", WHISTLE] if command == "mapped" else ["--la", "886"]
    return ["adapt", command, "--dir", exchange, *who, "--report", report, *files]


@pytest.mark.parametrize(("case", "built", "findings", "first"), CASES, ids=lambda v: str(v[-1]) if isinstance(
    v, list) else None)
def test_each_broken_file_gives_clear_findings_and_good_rows_go_through(tmp_path, exchange, case, built, findings,
                                                                         first):
    report = tmp_path / "report.json"
    result = sgx(*_command(exchange, case, report), code=1 if findings else 0)
    assert result.exception is None or isinstance(result.exception, SystemExit)  # never a traceback
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert summary["findings"] == findings
    assert sum(summary["rows"].values()) == summary["rows_read"]  # every row read in one named outcome
    assert sum(summary["messages_built"].values()) == built and summary["sent"] == built
    problems = orjson.loads(report.read_bytes())["problems"]
    named = Path(case[-1]).name
    assert any(named in p["file"] for p in problems) or not findings
    if first:
        mine = next(p for p in problems if named in p["file"])
        assert (mine["row"], mine["field"]) == first
    for p in problems:
        assert p["message"] and (" the " in p["message"] or ";" in p["message"])  # says what and what to do
    for text in (result.output, report.read_text()):
        assert not any(value in text for value in CHILD_DATA)


def test_a_200_mb_file_is_read_in_bounded_memory_and_its_good_rows_kept(tmp_path, exchange):
    big = tmp_path / "episodes.csv"
    with open(big, "w") as fh:
        fh.write((CORPUS / "ssda903" / "episodes_bad_dates.csv").read_text().splitlines()[0] + "\n")
        fh.write("CHILDX1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
        chunk = "A" * (1024 * 1024)
        for _ in range(200):  # one 200 MB line with no break: a corrupt export
            fh.write(chunk)
        fh.write("\nCHILDX2,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    assert big.stat().st_size > 200 * 1024 * 1024
    probe = (
        "import resource, sys\n"
        "from click.testing import CliRunner\n"
        "from sgx.cli import cli\n"
        "r = CliRunner().invoke(cli, sys.argv[1:])\n"
        "print(r.exit_code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
        "print(r.stdout.strip().splitlines()[-1])\n")
    def run(episodes: Path) -> tuple[int, int, dict]:
        out = subprocess.run([sys.executable, "-c", probe, "adapt", "ssda903", "--dir", str(exchange), "--la", "886",
                              "--dry-run", str(HEADER), str(episodes)], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parents[3], env={**os.environ, "PYTHONPATH": "."})
        status, peak = map(int, out.stdout.splitlines()[0].split())
        return status, peak, orjson.loads(out.stdout.splitlines()[1])

    small = tmp_path / "small" / "episodes.csv"
    small.parent.mkdir()
    small.write_text(big.open().readline() + "CHILDX1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    _, baseline_mb, _ = run(small)  # the same command on a file of two lines: imports, validator, directory
    status, peak_mb, summary = run(big)
    assert status == 1 and summary["findings"] == {"line-too-long": 1}
    assert summary["messages_built"] == {"placement-started": 2}
    # The long line never sits in memory: reading it adds far less than its 200 MB to what the command needs anyway.
    assert peak_mb - baseline_mb < 64, f"peak memory {peak_mb} MB for a 200 MB file, {baseline_mb} MB for two lines"


SIX = CORPUS / "ssda903" / "header_six.csv"
WHOLE = {"sent": 0, "unchanged": 0, "not_notifiable": 0, "held_back": 0, "refused": 0}
OUTCOME_CASES = [
    # (command and files, extra options, rows by outcome, not-notifiable rows by reason, findings by code)
    pytest.param(["ssda903", SIX, "ssda903/episodes_unlocatable.csv"], [],
                 {"sent": 2, "not_notifiable": 4, "held_back": 6},
                 {"own-area": 2, "not-at-registered-setting": 2},
                 {"setting-not-in-directory": 1, "placement-not-located": 2}, id="unlocatable placements are held"),
    pytest.param(["ssda903", SIX, "ssda903/episodes_unlocatable.csv", "ssda903/missing_six.csv"], [],
                 {"sent": 3, "not_notifiable": 5, "held_back": 8},
                 {"own-area": 2, "not-at-registered-setting": 2, "not-missing": 1},
                 {"setting-not-in-directory": 1, "placement-not-located": 2, "missing-value": 1},
                 id="a missing episode waits with its child's held placement"),
    pytest.param(["ssda903", "ssda903/header_regional.csv", "ssda903/episodes_regional.csv"], [],
                 {"sent": 4, "refused": 4}, {}, {"other-authority": 2, "unknown-authority": 2},
                 id="other authorities' rows are refused"),
    pytest.param(["ssda903", "ssda903/header_regional.csv", "ssda903/episodes_regional.csv"], ["--split-by-la"],
                 {"sent": 4, "not_notifiable": 2, "refused": 2}, {"other-la": 2}, {"unknown-authority": 2},
                 id="split by LA leaves other authorities' rows"),
    pytest.param(["ssda903", "ssda903/header_conflicting.csv", "ssda903/episodes_two.csv"], [],
                 {"sent": 3, "held_back": 3}, {}, {"conflicting-child-facts": 2},
                 id="conflicting Header rows hold the child"),
    pytest.param(["ssda903", SIX, "ssda903/episodes_overlapping.csv"], [],
                 {"sent": 3, "not_notifiable": 2, "held_back": 8}, {"no-placement": 2},
                 {"overlapping-episodes": 2, "impossible-episode": 1}, id="overlapping episodes hold the child"),
    pytest.param(["ssda903", SIX, "ssda903/episodes_formula.csv"], [],
                 {"sent": 4, "not_notifiable": 4, "refused": 4}, {"no-placement": 4}, {"formula-text": 4},
                 id="formula-like text is refused"),
    pytest.param(["ssda903", SIX, "ssda903/episodes_extra_columns.csv"], [],
                 {"sent": 2, "not_notifiable": 5}, {"no-placement": 5}, {"unknown-column": 2},
                 id="an unknown extra column is a warning"),
    pytest.param(["annex-a", "xlsx/annex_a_conflicts.xlsx"], [], {"sent": 1, "held_back": 4, "refused": 1}, {},
                 {"conflicting-child-facts": 1, "overlapping-episodes": 2, "formula-text": 1},
                 id="annex a conflicts, overlaps and formula text"),
    pytest.param(["annex-a", "xlsx/annex_a_regional.xlsx"], [], {"sent": 1, "refused": 1}, {},
                 {"other-authority": 1}, id="annex a regional workbook"),
    pytest.param(["mapped", "mapped/whistleblowing_formula.csv"], [], {"sent": 2, "refused": 3}, {},
                 {"formula-text": 3}, id="formula-like text in a log is refused"),
    pytest.param(["mapped-regional", "mapped/whistleblowing_regional.csv"], [], {"sent": 1, "refused": 1}, {},
                 {"other-authority": 1}, id="a log's authority column is checked"),
]


@pytest.mark.parametrize(("case", "options", "rows", "reasons", "findings"), OUTCOME_CASES)
def test_each_case_ends_every_row_in_its_named_outcome(tmp_path, exchange, case, options, rows, reasons, findings):
    report = tmp_path / "report.json"
    regional = case[0] == "mapped-regional"
    command = _command(exchange, ["mapped", *case[1:]] if regional else case, report)
    if regional:
        command[command.index("--mapping") + 1] = CORPUS / "mapped" / "regional-log.toml"
    result = sgx(*command, *options, "--dry-run", code=1 if findings else 0)
    assert result.exception is None or isinstance(result.exception, SystemExit)  # never a traceback
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == {**WHOLE, **rows} and summary["rows_read"] == sum(rows.values())
    assert summary["not_notifiable"] == reasons and summary["findings"] == findings
    problems = orjson.loads(report.read_bytes())["problems"]
    named = {Path(f).name for f in case[1:]}
    assert all(p["file"].split(" [")[0] in named for p in problems)  # the real file, never "episodes"
    assert all(p["row"] for p in problems if p["code"] != "missing-table")
    for text in (result.output, report.read_text()):
        assert not any(value in text for value in CHILD_DATA)
