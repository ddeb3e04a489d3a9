"""Safety properties of an adapter run, each checked on the real adapter and on a deliberately broken twin
that the same check must catch:

- no silent bucket: every row read ends in one named outcome, and a placement the exchange cannot locate is
  held back with a finding, never counted as "not notifiable";
- no row under another identity: a message never carries a child whose row names another authority;
- no formula-like text (CSV injection) in a queued message.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from adapters import cli as adapter_cli
from adapters import placements
from adapters.outcomes import REASONS
from tests.unit.adapters.conftest import sgx

CORPUS = Path(__file__).parents[2] / "corpus"
SSDA903 = CORPUS / "ssda903"


def _run(exchange, tmp_path, *files, options=(), la="886") -> tuple[dict, list[dict]]:
    report = tmp_path / "r.json"
    result = sgx("adapt", "ssda903", "--dir", exchange, "--la", la, "--report", report, *options, *files, code=None)
    assert result.exit_code in (0, 1), result.output
    return orjson.loads(result.stdout.strip().splitlines()[-1]), orjson.loads(report.read_bytes())["problems"]


def no_silent_bucket(summary: dict, problems: list[dict], unlocatable_rows: set[tuple[str, int]]) -> None:
    """The property: every row has one named outcome, reasons are named ones, nothing was left undecided,
    and each unlocatable placement row is held back with a finding naming it."""
    assert sum(summary["rows"].values()) == summary["rows_read"], "rows without an outcome"
    assert set(summary["not_notifiable"]) <= set(REASONS), "a not-notifiable row without a named reason"
    assert sum(summary["not_notifiable"].values()) == summary["rows"]["not_notifiable"]
    assert "unaccounted-row" not in summary["findings"], "a row no step decided about"
    found = {(p["file"], p["row"]) for p in problems if p["code"] in ("setting-not-in-directory",
                                                                       "placement-not-located")}
    assert unlocatable_rows <= found, f"unlocatable placements without a finding: {unlocatable_rows - found}"
    assert summary["rows"]["held_back"] >= 2 * len(unlocatable_rows)  # each episode row and its Header row


UNLOCATABLE = {("episodes_unlocatable.csv", 3), ("episodes_unlocatable.csv", 4), ("episodes_unlocatable.csv", 5)}


def test_no_silent_bucket_on_the_real_adapter(tmp_path, exchange):
    summary, problems = _run(exchange, tmp_path, SSDA903 / "header_six.csv", SSDA903 / "episodes_unlocatable.csv",
                             options=["--dry-run"])
    no_silent_bucket(summary, problems, UNLOCATABLE)


def test_no_silent_bucket_catches_a_locator_that_calls_unlocatable_placements_out_of_area(tmp_path, exchange,
                                                                                         monkeypatch):
    real = placements.Locator.locate

    def out_of_area(self, p, sender):  # the old behaviour: what cannot be located is quietly "out of scope"
        setting, problem, reason = real(self, p, sender)
        return (setting, None, "own-area") if setting is None and problem else (setting, problem, reason)

    monkeypatch.setattr(placements.Locator, "locate", out_of_area)
    summary, problems = _run(exchange, tmp_path, SSDA903 / "header_six.csv", SSDA903 / "episodes_unlocatable.csv",
                             options=["--dry-run"])
    with pytest.raises(AssertionError, match="unlocatable placements without a finding"):
        no_silent_bucket(summary, problems, UNLOCATABLE)


def test_no_silent_bucket_catches_a_planner_that_drops_rows(tmp_path, exchange, monkeypatch):
    real = placements.Plan.settle

    def forgetful(self, rows, outcome, reason=None):  # a step that decides nothing about not-notifiable rows
        if outcome != "not_notifiable":
            real(self, rows, outcome, reason)

    monkeypatch.setattr(placements.Plan, "settle", forgetful)
    summary, problems = _run(exchange, tmp_path, SSDA903 / "header_six.csv", SSDA903 / "episodes_unlocatable.csv",
                             options=["--dry-run"])
    assert summary["findings"].get("unaccounted-row")  # the run's own net still names every such row
    with pytest.raises(AssertionError, match="a row no step decided about"):
        no_silent_bucket(summary, problems, UNLOCATABLE)


def children_sent(exchange: Path, sender: str) -> dict[str, str]:
    """Each child named in the sender's outbox, with the LA code the message gives as its placing authority."""
    out: dict[str, str] = {}
    with sqlite3.connect(exchange / "outbox" / f"{sender}.db") as db:
        for (body,) in db.execute("SELECT body FROM outbox"):
            for entry in orjson.loads(body)["entry"]:
                resource = entry["resource"]
                if resource["resourceType"] == "Patient":
                    identifier = resource["identifier"][0]
                    out[identifier["value"]] = identifier["assigner"]["identifier"]["value"]
    return out


def rows_of_other_authorities_sent(exchange: Path, sender: str, la_column: dict[str, str]) -> set[str]:
    """The property, as a set of violations: children sent by `sender` whose rows say another authority."""
    own = sender.removeprefix("la-")
    return {child for child in children_sent(exchange, sender) if la_column.get(child) not in (own, "Kent")}


LA_COLUMN = {"CHILDX1": "886", "CHILDX2": "371", "CHILDX3": "Kent", "CHILDX4": "Nowhere"}
REGIONAL = (SSDA903 / "header_regional.csv", SSDA903 / "episodes_regional.csv")


def test_no_row_goes_out_under_another_authoritys_identity(tmp_path, exchange):
    summary, problems = _run(exchange, tmp_path, *REGIONAL)
    assert summary["sent"] == 2 and rows_of_other_authorities_sent(exchange, "la-886", LA_COLUMN) == set()
    assert set(children_sent(exchange, "la-886")) == {"CHILDX1", "CHILDX3"}
    assert {(p["file"], p["row"], p["field"], p["code"]) for p in problems} >= {
        ("episodes_regional.csv", 3, "LA", "other-authority"), ("header_regional.csv", 3, "LA", "other-authority")}


def test_each_authority_sends_only_its_own_rows_of_a_regional_file(tmp_path, exchange):
    summary, _ = _run(exchange, tmp_path, *REGIONAL, options=["--split-by-la"], la="371")
    # Doncaster's own child is placed in Doncaster: not notifiable; Kent's rows are left for Kent's run.
    assert summary["rows"]["sent"] == 0 and summary["not_notifiable"] == {"other-la": 4, "own-area": 2}
    assert summary["findings"] == {"unknown-authority": 2}
    summary, _ = _run(exchange, tmp_path, *REGIONAL, options=["--split-by-la"])
    assert summary["not_notifiable"] == {"other-la": 2} and summary["sent"] == 2
    assert set(children_sent(exchange, "la-886")) == {"CHILDX1", "CHILDX3"}


def test_the_identity_check_catches_a_run_that_sends_every_row_as_its_own(tmp_path, exchange, monkeypatch):
    monkeypatch.setattr(adapter_cli.Run, "own_rows", lambda self, records, column, heading=None: records)
    _run(exchange, tmp_path, *REGIONAL)
    assert rows_of_other_authorities_sent(exchange, "la-886", LA_COLUMN) == {"CHILDX2", "CHILDX4"}


def formula_text_in_outbox(exchange: Path, sender: str) -> list[str]:
    """The property, as violations: string values in queued messages that a spreadsheet would run."""
    from adapters.text import formula_like

    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and formula_like(value) and not value.startswith("-"):
            found.append(value)  # ("-" starts FHIR's negative offsets in times; numbers pass formula_like)

    with sqlite3.connect(exchange / "outbox" / f"{sender}.db") as db:
        for (body,) in db.execute("SELECT body FROM outbox"):
            walk(orjson.loads(body))
    return found


FORMULA_RUNS = [
    ("ssda903", "--la", "886", SSDA903 / "header_six.csv", SSDA903 / "episodes_formula.csv"),
    ("mapped", "--sender", "la-886", "--mapping", Path(__file__).parents[3] / "examples" / "mappings" /
     "whistleblowing-log.toml", CORPUS / "mapped" / "whistleblowing_formula.csv"),
]


def test_formula_like_text_never_reaches_a_message(exchange):
    for command, *args in FORMULA_RUNS:
        result = sgx("adapt", command, "--dir", exchange, *args, code=1)
        assert '"formula-text"' in result.stdout
    assert formula_text_in_outbox(exchange, "la-886") == []


def test_the_formula_check_catches_a_reader_that_lets_formulas_through(exchange, monkeypatch):
    import adapters.mapped.reader
    import adapters.ssda903_csv.reader

    for module in (adapters.ssda903_csv.reader, adapters.mapped.reader):
        monkeypatch.setattr(module, "formula_like", lambda text: False)
    for command, *args in FORMULA_RUNS:
        sgx("adapt", command, "--dir", exchange, *args, code=None)
    # The log's summaries reach the messages as they stand (the export's postcodes and unknown settings do not).
    assert sorted(formula_text_in_outbox(exchange, "la-886")) == ["=1+1", "Invented.\t+cmd"]
