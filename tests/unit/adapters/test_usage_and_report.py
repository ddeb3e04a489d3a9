"""Usage and set-up errors exit 2 with a clear message and no traceback, naming the command to use; the HTML
report counts what the JSON report counts, explains each outcome and shows what would be sent to whom."""

from __future__ import annotations

import shutil
from pathlib import Path

import lxml.html
import orjson
import pytest

from adapters.outcomes import EXPLAINED, REASONS
from tests.conftest import PUBLIC_SAMPLES
from tests.unit.adapters.conftest import sgx

CORPUS = Path(__file__).parents[2] / "corpus"
SSDA903 = CORPUS / "ssda903"
HEADER, EPISODES = SSDA903 / "header_six.csv", SSDA903 / "episodes_unlocatable.csv"


def _usage_error(*args) -> str:
    result = sgx(*args, code=2)
    assert "Traceback" not in result.output and "stopped on an unexpected" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


def test_a_missing_exchange_folder_is_a_usage_error(tmp_path):
    out = _usage_error("adapt", "ssda903", "--dir", tmp_path / "nowhere", "--la", "886", HEADER, EPISODES)
    assert "not an exchange folder" in out and "--dir" in out


def test_a_folder_without_the_operator_key_is_a_usage_error(tmp_path, exchange):
    (exchange / "operator.pub.jwk").unlink()
    out = _usage_error("adapt", "ssda903", "--dir", exchange, "--la", "886", HEADER, EPISODES)
    assert "operator.pub.jwk is missing" in out and "--dir" in out


def test_a_sender_without_a_signing_key_is_a_usage_error_before_anything_is_read(tmp_path, exchange):
    for key in (exchange / "keys").glob("la-886-*"):
        key.unlink()
    out = _usage_error("adapt", "ssda903", "--dir", exchange, "--la", "886", HEADER, EPISODES)
    assert "no signing key for la-886" in out and "keygen" in out and "--dry-run" in out
    assert not (exchange / "outbox" / "la-886.db").exists()
    sgx("adapt", "ssda903", "--dir", exchange, "--la", "886", HEADER, EPISODES, "--dry-run", code=1)  # a dry run can


def test_an_unknown_sender_is_a_usage_error(tmp_path, exchange):
    assert "no participant la-999" in _usage_error("adapt", "cin", "--dir", exchange, "--la", "999",
                                                   CORPUS / "cin" / "bad_dates.xml")


@pytest.mark.parametrize(("command", "file", "says"), [
    ("ssda903", PUBLIC_SAMPLES / "annex_a" / "Annex_A.xlsx", ("sgx adapt annex-a", "exported as CSV")),
    ("ssda903-xml", PUBLIC_SAMPLES / "cin_census" / "xml" / "cin-2022.xml", ("sgx adapt cin",)),
    ("cin", PUBLIC_SAMPLES / "ssda903" / "xml" / "fake_903.xml", ("sgx adapt ssda903-xml",)),
    ("annex-a", CORPUS / "xlsx" / "annex_a_not_a_workbook.xlsx", ("text (CSV) file", "sgx adapt ssda903")),
    ("cin", HEADER, ("sgx adapt ssda903",)),
    ("mapped", PUBLIC_SAMPLES / "ssda903" / "xml" / "fake_903.xml", ("sgx adapt ssda903-xml",)),
])
def test_a_file_of_the_wrong_kind_names_the_command_that_reads_it(tmp_path, exchange, command, file, says):
    who = ["--sender", "la-886", "--mapping", Path(__file__).parents[3] / "examples" / "mappings" /
           "whistleblowing-log.toml"] if command == "mapped" else ["--la", "886"]
    out = _usage_error("adapt", command, "--dir", exchange, *who, file)
    assert file.name in out and all(s in out for s in says) and "nothing was read or sent" in out
    assert "\x00" not in out and "PK" not in out  # no binary noise


def test_a_workbook_given_with_its_csv_tables_is_refused_before_any_is_read(tmp_path, exchange):
    book = tmp_path / "episodes.xlsx"
    shutil.copy(PUBLIC_SAMPLES / "annex_a" / "Annex_A.xlsx", book)
    out = _usage_error("adapt", "ssda903", "--dir", exchange, "--la", "886", HEADER, book)
    assert "annex-a" in out  # names the command that reads workbooks
    assert not (exchange / "outbox" / "la-886.db").exists()


def test_a_report_in_a_folder_that_does_not_exist_is_a_usage_error_before_anything_is_read(tmp_path, exchange):
    out = _usage_error("adapt", "ssda903", "--dir", exchange, "--la", "886", "--report", tmp_path / "no" / "r.html",
                       HEADER, EPISODES)
    assert "its folder does not exist" in out and not (exchange / "outbox" / "la-886.db").exists()


def test_two_files_of_one_name_are_a_usage_error(tmp_path, exchange):
    other = tmp_path / "2025"
    other.mkdir()
    shutil.copy(EPISODES, other / EPISODES.name)
    out = _usage_error("adapt", "ssda903", "--dir", exchange, "--la", "886", HEADER, EPISODES, other / EPISODES.name)
    assert "more than one file named episodes_unlocatable.csv" in out
    _usage_error("adapt", "ssda903", "--dir", exchange, "--la", "886", HEADER, HEADER, EPISODES)


def _cells(page: lxml.html.HtmlElement) -> dict[str, int]:
    return {td.get("data-key"): int(td.text_content()) for td in page.iter("td") if td.get("data-key") and
            td.get("data-key") != "sending"}


def _json_value(report: dict, key: str) -> int:
    value = report
    for part in key.split(".", 1):
        value = value[part]
    return value


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_html_report_counts_what_the_json_report_counts_and_explains_each(tmp_path, exchange, dry_run):
    extra = ["--dry-run"] if dry_run else []
    files = (HEADER, EPISODES, SSDA903 / "missing_six.csv")
    for name in ("r.json", "r.html"):  # the same export twice: a dry run changes nothing between them
        sgx("adapt", "ssda903", "--dir", exchange, "--la", "886", *extra, "--report", tmp_path / name, *files,
            code=1)
        if not dry_run:
            shutil.rmtree(exchange / "adapter-state")  # the second run must build the same messages again
            (exchange / "outbox" / "la-886.db").unlink()
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    page = lxml.html.fromstring((tmp_path / "r.html").read_bytes())
    cells = _cells(page)
    for key in ("rows_read", "unchanged", "waiting", *(f"rows.{o}" for o in report["rows"]),
                *(f"not_notifiable.{r}" for r in report["not_notifiable"]),
                *(f"messages_built.{e}" for e in report["messages_built"]),
                *(f"findings.{c}" for c in report["findings"])):
        assert cells[key] == _json_value(report, key), key
    assert cells.pop("sent") == (0 if dry_run else report["sent"])
    assert len(cells) == 3 + len(report["rows"]) + len(report["not_notifiable"]) + len(report["messages_built"]) + \
        len(report["findings"])  # and nothing on the page the JSON does not have
    # Each summary category is explained on the page.
    text = page.text_content()
    for outcome, meaning in EXPLAINED.items():
        assert " ".join(meaning.split()) in " ".join(text.split()), outcome
    for reason in report["not_notifiable"]:
        assert REASONS[reason] in text
    # What would be sent: by event, setting and recipient, adding up to the messages built.
    sending = page.get_element_by_id("sending")
    rows = [[td.text_content().strip() for td in tr.iter("td")] for tr in sending.iter("tr")][1:]
    assert rows == [[s["event"], f"{s['setting']} ({s['setting_name']})", ", ".join(s["recipients"]),
                     str(s["messages"])] for s in report["sending"]]
    assert sum(s["messages"] for s in report["sending"]) == sum(report["messages_built"].values())
    assert {"placement-started", "concern-notification"} <= {s["event"] for s in report["sending"]}
    started = next(s for s in report["sending"] if s["event"] == "placement-started")
    assert started["setting"] == "SC900001" and "la-371" in started["recipients"]
    # Findings name the real file, row and field; the table has every finding the JSON lists.
    findings = page.get_element_by_id("findings")
    listed = [[td.text_content().strip() for td in tr.iter("td")][:4] for tr in findings.iter("tr")][1:]
    assert listed == [[p["file"], str(p["row"] or ""), p["field"] or "", p["code"]] for p in report["problems"]]
    assert ["episodes_unlocatable.csv", "3", "URN", "setting-not-in-directory"] in listed
