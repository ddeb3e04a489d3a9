"""Where a child lives decides who is told: the URN in the directory, else the placement's postcode when it
is a setting's registered postcode, with PL_LA as a check; a confidential placement is never located by its
address."""

from __future__ import annotations

import sqlite3

import orjson

from tests.unit.adapters.conftest import SETTING_POSTCODE, sgx, summary
from tests.unit.adapters.workbooks import annex_a, list_8_row

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nC1,1,27/03/2010,WBRI,,,\n"
EPISODES = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN,PL_LA\n"


def _ssda903(tmp_path, root, episode_row: str, *, code=0) -> dict:
    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text(HEADER)
    episodes.write_text(EPISODES + episode_row + "\n")
    return summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes, "--dry-run",
                   "--report", tmp_path / "r.json", code=code)


def _problems(tmp_path) -> list[dict]:
    return orjson.loads((tmp_path / "r.json").read_bytes())["problems"]


def test_a_placement_without_a_known_urn_is_found_by_its_setting_postcode(tmp_path, exchange):
    out = _ssda903(tmp_path, exchange, f"C1,01/02/2026,S,C2,N1,K2,PR4,,,,,{SETTING_POSTCODE.lower()},,")
    assert out["messages_built"] == {"placement-started": 1}


def test_pl_la_that_disagrees_with_the_directory_is_reported_and_the_directory_wins(tmp_path, exchange):
    out = _ssda903(tmp_path, exchange, "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001,886", code=1)
    assert out["messages_built"] == {"placement-started": 1}
    assert out["findings"] == {"host-la-mismatch": 1}
    assert _problems(tmp_path)[0]["row"] == 2 and _problems(tmp_path)[0]["field"] == "PL_LA"


def test_a_setting_outside_the_directory_in_another_area_is_held_with_a_finding(tmp_path, exchange):
    out = _ssda903(tmp_path, exchange, "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC123456,373", code=1)
    assert out["messages_built"] == {} and out["findings"] == {"setting-not-in-directory": 1}
    assert "la-373" in _problems(tmp_path)[0]["message"]


def test_a_placement_in_the_placing_authoritys_own_area_is_not_notified(tmp_path, exchange):
    out = _ssda903(tmp_path, exchange, "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC123456,886")
    assert out["messages_built"] == {} and out["findings"] == {}
    assert out["rows"]["not_notifiable"] == 2 and out["not_notifiable"] == {"own-area": 2}


def test_a_confidential_placement_is_never_located_by_address_and_is_held_asking_for_the_urn(tmp_path, exchange):
    book = annex_a(tmp_path / "annex.xlsx", list_8_row("A1", postcode=SETTING_POSTCODE, la="CON"))
    out = summary("adapt", "annex-a", "--dir", exchange, "--la", "886", book, "--dry-run", "--report",
                  tmp_path / "r.json", code=1)
    assert out["messages_built"] == {} and out["rows"]["held_back"] == 1
    assert out["findings"] == {"placement-not-located": 1}
    (problem,) = _problems(tmp_path)
    assert "never located by its address" in problem["message"] and problem["field"] == "URN of Placement"


def test_a_confidential_placement_at_a_known_setting_is_sent_labelled_confidential(tmp_path, exchange):
    book = annex_a(tmp_path / "annex.xlsx", list_8_row("A1", urn="SC900001", la="CON"))
    out = summary("adapt", "annex-a", "--dir", exchange, "--la", "886", book)
    assert out["messages_built"] == {"placement-started": 1} and out["sent"] == 1
    sgx("broker", "route", "--dir", exchange, "--once")
    sgx("node", "run", "--dir", exchange, "--participant", "la-371", "--once")
    with sqlite3.connect(exchange / "inbox" / "la-371.db") as db:
        (body,) = db.execute("SELECT body FROM inbox").fetchone()
    message = orjson.loads(body)
    labels = {c["code"] for c in message["meta"]["security"]}
    assert "confidential-placement" in labels


def test_a_postcode_several_settings_share_or_a_junk_one_is_held_with_what_to_do(tmp_path, exchange):
    draft = exchange / "directory.draft.json"
    data = orjson.loads(draft.read_bytes())
    data["settings"].append({**data["settings"][0], "urn": "SC900002", "name": "Second Lodge"})
    draft.write_bytes(orjson.dumps(data))
    sgx("directory", "sign", "--dir", exchange)
    out = _ssda903(tmp_path, exchange, f"C1,01/02/2026,S,C2,N1,K2,PR4,,,,,{SETTING_POSTCODE},,", code=1)
    assert out["messages_built"] == {} and out["findings"] == {"placement-not-located": 1}
    assert "2 settings in the directory are registered at the placement postcode" in _problems(tmp_path)[0]["message"]
    out = _ssda903(tmp_path, exchange, "C1,01/02/2026,S,C2,N1,K2,PR4,,,,,not a postcode,,", code=1)
    assert out["findings"] == {"placement-not-located": 1} and out["rows"]["held_back"] == 2
    assert "not a full UK postcode" in _problems(tmp_path)[0]["message"]
