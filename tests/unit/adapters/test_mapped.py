"""The mapped reader: an LA maps its LADO, whistleblowing or complaints log with a TOML file, no code."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from tests.unit.adapters.conftest import routed, sgx, summary
from tests.unit.adapters.workbooks import workbook

EXAMPLES = Path(__file__).parents[3] / "examples"
LADO = EXAMPLES / "mappings" / "lado-log.toml"


def test_the_example_lado_log_becomes_referrals_to_the_host_lado_once(tmp_path, exchange):
    log = EXAMPLES / "logs" / "lado-log.csv"
    out = summary("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping", LADO, log)
    assert out["messages_built"] == {"allegation-referral": 2} and out["sent"] == 2
    again = summary("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping", LADO, log)
    assert again["messages_built"] == {} and again["unchanged"] == 2
    assert routed(exchange) == 2
    sgx("node", "run", "--dir", exchange, "--participant", "lado-371", "--once")
    assert sgx("node", "inbox", "--dir", exchange, "--participant", "lado-371").output.count("allegation-referral") == 2


def test_a_corrected_row_is_sent_again_and_bad_rows_are_findings(tmp_path, exchange):
    log = tmp_path / "lado.csv"
    head = (EXAMPLES / "logs" / "lado-log.csv").read_text().splitlines()[0]
    log.write_text(head + "\nL-1,02/11/2026,SC900001,Physical,S-1,,,,,\n")
    summary("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping", LADO, log)
    log.write_text(head + "\nL-1,02/11/2026,SC900001,Sexual,S-1,,,,,\n"
                          "L-2,31/11/2026,SC900001,Physical,S-2,,,,,\n"
                          "L-3,02/11/2026,SC900001,Shouting,S-3,,,,,\n"
                          "L-4,02/11/2026,SC900001,Physical,,,,,,\n"
                          "L-5,02/11/2026,SC999999,Physical,S-5,,,,,\n")
    out = summary("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping", LADO, log,
                  "--report", tmp_path / "r.json", code=1)
    assert out["messages_built"] == {"allegation-referral": 1}
    assert out["findings"] == {"bad-code": 1, "bad-date": 1, "missing-value": 1, "setting-not-in-directory": 1}
    problems = orjson.loads((tmp_path / "r.json").read_bytes())["problems"]
    assert [(p["row"], p["field"]) for p in problems] == [(3, "Date received"), (4, "Allegation type"),
                                                          (5, "Staff ID"), (6, "Ofsted URN")]
    assert "[codes.category]" in problems[1]["message"] and "Shouting" not in problems[1]["message"]


def test_a_complaints_workbook_maps_codes_and_dates(tmp_path, exchange):
    book = workbook(tmp_path / "complaints.xlsx", {"Complaints": [
        ["Complaint no.", "Date", "URN", "Kind", "Detail"],
        ["K-1", datetime(2026, 11, 2), "SC900001", "Hospital", "Invented: A&E visit after a fall."],
        ["K-2", datetime(2026, 11, 3), "SC900001", "Missing", None]]})
    out = summary("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping",
                  EXAMPLES / "mappings" / "complaints-log.toml", book)
    assert out["messages_built"] == {"concern-notification": 2}


def test_a_log_without_the_mapped_columns_names_each_missing_heading(tmp_path, exchange):
    log = tmp_path / "log.csv"
    log.write_text("Ref,When\nW-1,01/01/2026\n")
    out = summary("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping",
                  EXAMPLES / "mappings" / "whistleblowing-log.toml", log, code=1)
    assert out["findings"] == {"missing-column": 3}


def test_an_unusable_mapping_is_a_usage_error_that_says_what_to_fix(tmp_path, exchange):
    mapping = tmp_path / "m.toml"
    for text, says in (('event = "placement-started"', "event must be one of"),
                       ('event = "concern-notification"\n[columns]\ndate = "D"', "needs setting_urn, concern_type"),
                       ('event = "concern-notification"\n[columns]\ndate="D"\nsetting_urn="U"\nhair="H"\n'
                        '[fixed]\nconcern_type="complaint"', "'hair'"),
                       ('event = "concern-notification"\n[columns]\ndate="D"\nsetting_urn="U"\n'
                        '[fixed]\nconcern_type="gossip"', "not a code of concern-type"),
                       ("event = [", "not valid TOML")):
        mapping.write_text(text)
        result = sgx("adapt", "mapped", "--dir", exchange, "--sender", "la-886", "--mapping", mapping,
                     EXAMPLES / "logs" / "whistleblowing-log.csv", code=2)
        assert says in result.output, text
