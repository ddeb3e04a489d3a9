"""`sgx adapt ssda903`: placements become messages once; a later export sends only what changed."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from sgx.cli import cli
from tests.unit.adapters.conftest import routed, summary

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nC1,1,27/03/2010,WBRI,,,\nC2,2,01/01/2011,WBRI,,,\n"
EPISODES = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"


def test_same_export_twice_sends_nothing_new_and_a_later_one_sends_the_change(tmp_path, exchange):
    root = exchange
    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n"
                                   "C2,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC123456\n")  # a setting not in the directory
    dry = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes, "--dry-run", code=1)
    assert dry["messages_built"] == {"placement-started": 1} and dry["sent"] == 0
    # C2's setting is not in the directory: its episode and Header rows are held back with a finding.
    assert dry["rows"] == {"sent": 2, "unchanged": 0, "not_notifiable": 0, "held_back": 2, "refused": 0}
    assert dry["findings"] == {"setting-not-in-directory": 1}
    first = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes, code=1)
    assert first["messages_built"] == {"placement-started": 1} and first["sent"] == 1
    again = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes, code=1)
    assert again["messages_built"] == {} and again["unchanged"] == 1 and again["rows"]["unchanged"] == 2
    episodes.write_text(EPISODES + "C1,01/02/2026,S,C2,N1,K2,PR4,20/02/2026,X1,ALLEG,,,SC900001\n")
    later = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes)
    assert later["messages_built"] == {"placement-ended": 1}
    assert routed(root) == 2


def test_bad_rows_are_reported_and_good_rows_still_go_through(tmp_path, exchange):
    root = exchange
    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + "C1,31/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n"
                                   "C2,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    report = tmp_path / "report.json"
    out = summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes, "--report", report, code=1)
    assert out["findings"] == {"bad-date": 1} and out["messages_built"] == {"placement-started": 1}
    problems = orjson.loads(report.read_bytes())["problems"]
    assert problems[0]["row"] == 2 and problems[0]["field"] == "DECOM"


def test_xml_export_goes_through_the_same_path(tmp_path, exchange):
    root = exchange
    xml = tmp_path / "return.xml"
    xml.write_text("<EXPSSDA903><CHILD><HEADER><CHILDID>X1</CHILDID><SEX>2</SEX><DOB>01/01/2012</DOB></HEADER>"
                   "<EPISODE><DECOM>01/02/2026</DECOM><RNE>S</RNE><LS>C2</LS><PL>K2</PL><URN>SC900001</URN>"
                   "<PLACE_PROVIDER>PR4</PLACE_PROVIDER><DEC /></EPISODE></CHILD></EXPSSDA903>")
    out = summary("adapt", "ssda903-xml", "--dir", root, "--la", "886", xml)
    assert out["messages_built"] == {"placement-started": 1} and out["sent"] == 1
    renamed = xml.rename(tmp_path / "return.txt")  # the kind is told from the content, not the name
    again = summary("adapt", "ssda903-xml", "--dir", root, "--la", "886", renamed)
    assert again["unchanged"] == 1 and again["rows"]["unchanged"] == 2 and again["findings"] == {}


def test_progress_is_shown_on_request_and_the_html_report_lists_findings(tmp_path, exchange):
    from tests.unit.adapters.conftest import sgx

    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + "C1,31/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    result = sgx("adapt", "ssda903", "--dir", exchange, "--la", "886", "--progress", "--dry-run",
                 "--report", tmp_path / "r.html", header, episodes, code=1)
    assert "reading" in result.stderr and "queueing" in result.stderr
    page = (tmp_path / "r.html").read_text()
    assert "bad-date" in page and "DECOM" in page and "31/02/2026" not in page


def test_a_run_that_lost_its_state_rebuilds_the_same_message_ids_and_queues_nothing_twice(tmp_path, exchange):
    import sqlite3

    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    assert summary("adapt", "ssda903", "--dir", exchange, "--la", "886", header, episodes)["sent"] == 1
    with sqlite3.connect(exchange / "adapter-state" / "la-886.db") as db:  # as if the run died before remembering
        db.execute("DELETE FROM sent")
    again = summary("adapt", "ssda903", "--dir", exchange, "--la", "886", header, episodes)
    assert again["messages_built"] == {"placement-started": 1} and again["sent"] == 0
    with sqlite3.connect(exchange / "outbox" / "la-886.db") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1


def test_a_missing_episode_of_a_child_placed_elsewhere_is_a_concern_to_the_host(tmp_path, exchange):
    header, episodes, missing = tmp_path / "header.csv", tmp_path / "episodes.csv", tmp_path / "missing.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    missing.write_text("CHILD,DOB,MISSING,MIS_START,MIS_END\nC1,27/03/2010,M,10/02/2026,11/02/2026\n"
                       "C1,27/03/2010,A,12/02/2026,12/02/2026\nC2,01/01/2011,M,10/02/2026,\n")
    out = summary("adapt", "ssda903", "--dir", exchange, "--la", "886", header, episodes, missing)
    assert out["messages_built"] == {"placement-started": 1, "concern-notification": 1} and out["sent"] == 2
    again = summary("adapt", "ssda903", "--dir", exchange, "--la", "886", header, episodes, missing)
    assert again["messages_built"] == {} and again["unchanged"] == 2
    assert routed(exchange) == 2


def test_the_xml_adapter_has_its_own_help():
    runner = CliRunner()
    xml_help = runner.invoke(cli, ["adapt", "ssda903-xml", "--help"]).output
    csv_help = runner.invoke(cli, ["adapt", "ssda903", "--help"]).output
    assert "Expanded SSDA903 XML export" in xml_help and "CSV" not in xml_help.split("Options:")[0]
    assert "CSV" in csv_help
