"""The messages kit: the project's own messages pass every test, and each deliberately broken producer fails
exactly the tests meant to catch it (so every check is shown to be able to fail)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree, html

from conformance.coverage import UNCHECKED, coverage
from conformance.kits import KITS
from conformance.kits.messages import MessagesContext
from conformance.model import Result, run_suite
from conformance.scenarios import scenarios
from sgx.cli import cli
from standard import artefacts

# The scenario each shipped example was built from: the project's own producer for the kit.
PRODUCED_BY_US = {"SCN-PLC-01": "placement-started-childrens-home", "SCN-PLC-02": "placement-started-confidential",
                  "SCN-PLC-03": "placement-ended-allegation", "SCN-INC-01": "serious-incident-police",
                  "SCN-ALG-01": "allegation-referral-physical",
                  "SCN-CON-01": "concern-notification-whistleblowing",
                  "SCN-DEC-01": "decision-recorded-strategy-meeting",
                  "SCN-INF-01": "information-request-staff-deployment"}


def _produce(folder: Path, change: Callable[[str, dict], dict | bytes] = lambda _, m: m) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for scenario_id, example in PRODUCED_BY_US.items():
        message = json.loads((artefacts.EXAMPLES / f"{example}.json").read_bytes())
        out = change(scenario_id, copy.deepcopy(message))
        (folder / f"{scenario_id}.json").write_bytes(out if isinstance(out, bytes) else json.dumps(out).encode())
    return folder


def _results(folder: Path, selected: set[str] | None = None) -> dict[str, Result]:
    report = run_suite(KITS["messages"].build(), MessagesContext(folder, selected))
    return {r.test.id: r.outcome.result for r in report.runs}


def _failing(results: dict[str, Result]) -> set[str]:
    return {test for test, result in results.items() if result in (Result.FAIL, Result.ERROR)}


def test_every_scenario_has_our_producer():
    assert set(PRODUCED_BY_US) == {s.id for s in scenarios()}


def test_the_projects_own_messages_pass_every_test(tmp_path):
    results = _results(_produce(tmp_path / "out"))
    assert _failing(results) == set()
    assert set(results.values()) == {Result.PASS}


def _drop_nhs_number(_, m):
    for e in m["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            r["identifier"] = [i for i in r["identifier"] if not i["system"].endswith("nhs-number")]
    return m


def _bad_nhs_check_digit(_, m):
    for e in m["entry"]:
        for i in e["resource"].get("identifier", []) if isinstance(e["resource"].get("identifier"), list) else []:
            if i["system"].endswith("nhs-number"):
                i["value"] = i["value"][:-1] + str((int(i["value"][-1]) + 1) % 10)
    return m


def _same_id_everywhere(_, m):
    m["identifier"]["value"] = "urn:uuid:00000000-0000-4000-8000-000000000001"
    return m


def _header_not_first(_, m):
    m["entry"].append(m["entry"].pop(0))
    return m


def _wrong_placement_type(scenario, m):
    if scenario == "SCN-PLC-01":
        for e in m["entry"]:
            if e["resource"]["resourceType"] == "Encounter":
                e["resource"]["type"][0]["coding"][0]["code"] = "K1"
                e["resource"]["type"][0]["coding"][0].pop("display", None)
    return m


def _no_confidential_label(scenario, m):
    if scenario == "SCN-PLC-02":
        m.pop("meta")
    return m


def _no_timestamp(_, m):
    m.pop("timestamp")
    return m


def _not_json(scenario, m):
    return b"{not json" if scenario == "SCN-CON-01" else m


def _wrong_event(scenario, m):
    if scenario == "SCN-PLC-03":
        return json.loads((artefacts.EXAMPLES / "placement-started-childrens-home.json").read_bytes())
    return m


def _other_lado(scenario, m):
    if scenario == "SCN-ALG-01":
        for e in m["entry"]:
            if e["resource"]["resourceType"] == "Task":
                e["resource"]["owner"]["identifier"]["value"] = "lado-372"
    return m


SCENARIO_TESTS = {s.id for s in scenarios()}
BROKEN = [
    # (broken producer, the tests that must fail and no others)
    (_drop_nhs_number, {"SCN-PLC-01", "SCN-PLC-02", "SCN-PLC-03", "SCN-INC-01"}),
    (_bad_nhs_check_digit, {"STD-04", "SCN-PLC-01", "SCN-PLC-02", "SCN-PLC-03", "SCN-INC-01"}),
    (_same_id_everywhere, {"STD-05"}),
    (_header_not_first, {"STD-03"}),
    (_wrong_placement_type, {"SCN-PLC-01"}),
    (_no_confidential_label, {"SCN-PLC-02"}),
    (_no_timestamp, {"STD-02"}),
    (_not_json, {"STD-01", "SCN-CON-01"}),
    (_wrong_event, {"SCN-PLC-03", "STD-05"}),  # the copied message keeps the other scenario's id too
    (_other_lado, {"SCN-ALG-01"}),
]


@pytest.mark.parametrize(("broken", "caught_by"), BROKEN, ids=[b.__name__.strip("_") for b, _ in BROKEN])
def test_each_broken_producer_fails_exactly_the_tests_meant_to_catch_it(tmp_path, broken, caught_by):
    assert _failing(_results(_produce(tmp_path / "out", broken))) == caught_by


def test_an_empty_folder_passes_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    results = _results(tmp_path / "empty")
    assert Result.PASS not in set(results.values())


def test_a_missing_scenario_fails_and_an_unselected_one_is_skipped_with_its_reason(tmp_path):
    folder = _produce(tmp_path / "out")
    (folder / "SCN-INC-01.json").unlink()
    assert _failing(_results(folder)) == {"SCN-INC-01"}
    selected = _results(folder, {"SCN-PLC-01"})
    assert _failing(selected) == set()
    assert {t for t, r in selected.items() if r is Result.SKIP} == SCENARIO_TESTS - {"SCN-PLC-01"}


def test_the_cli_writes_json_junit_and_html_reports_that_agree(tmp_path):
    folder = _produce(tmp_path / "out", _no_confidential_label)
    result = CliRunner().invoke(cli, ["conformance", "run", "--kit", "messages", "--messages", str(folder),
                                      "--report-dir", str(tmp_path / "reports")])
    assert result.exit_code == 1, result.output
    assert "FAIL  SCN-PLC-02" in result.output and "Traceback" not in result.output
    data = json.loads((tmp_path / "reports" / "report.json").read_bytes())
    assert data["counts"]["fail"] == 1 and data["passed"] is False
    junit = etree.parse(str(tmp_path / "reports" / "report.xml")).getroot()
    assert junit.get("failures") == "1" and int(junit.get("tests")) == len(data["tests"])
    failed = junit.findall(".//testcase[failure]")
    assert [c.get("name").split()[0] for c in failed] == ["SCN-PLC-02"]
    page = html.fromstring((tmp_path / "reports" / "report.html").read_bytes())
    assert page.xpath("//tr[@id='SCN-PLC-02']/td[@class='fail']")
    assert len(page.xpath("//td[@class='pass']")) == data["counts"]["pass"]


def test_reports_name_places_and_codes_never_a_childs_values(tmp_path):
    folder = _produce(tmp_path / "out", _bad_nhs_check_digit)
    CliRunner().invoke(cli, ["conformance", "run", "--kit", "messages", "--messages", str(folder),
                             "--report-dir", str(tmp_path / "reports")])
    produced = json.loads((folder / "SCN-PLC-01.json").read_bytes())
    patient = next(e["resource"] for e in produced["entry"] if e["resource"]["resourceType"] == "Patient")
    personal = [i["value"] for i in patient["identifier"]] + [patient["birthDate"]]
    for name in ("report.json", "report.xml", "report.html"):
        text = (tmp_path / "reports" / name).read_text()
        assert "nhs-number-invalid" in text
        assert not [value for value in personal if value in text], name


def test_the_cli_exit_codes(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["conformance", "run", "--kit", "messages", "--messages", str(_produce(tmp_path / "o"))])
    assert ok.exit_code == 0, ok.output
    for args in (["--messages", str(tmp_path / "absent")], [], ["--messages", str(tmp_path / "o"),
                                                                "--scenario", "SCN-NOPE"]):
        bad = runner.invoke(cli, ["conformance", "run", "--kit", "messages", *args])
        assert bad.exit_code == 2 and "error:" in bad.output and "Traceback" not in bad.output


def test_every_requirement_is_checked_or_has_a_written_reason():
    rows = coverage()
    unchecked = [c.requirement.id for c in rows if not c.covered and not c.reason]
    assert unchecked == []
    assert all(reason.strip() for reason in UNCHECKED.values())
