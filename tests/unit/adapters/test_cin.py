"""CIN census XML: read safely across schema years; a Section 47 enquiry or child protection plan about a
child placed in another area becomes a concern notification to that area, once."""

from __future__ import annotations

import pytest

from adapters.base import Problem
from adapters.cin_census import CinCensusReader
from tests.conftest import PUBLIC_SAMPLES
from tests.unit.adapters.conftest import routed, summary

CIN = PUBLIC_SAMPLES / "cin_census" / "xml"


def cin_file(path, *, lea="886", s47="2026-03-01", cpp=None, sex="<Sex>F</Sex>", extra=""):
    plans = f"<ChildProtectionPlans><CPPstartDate>{cpp}</CPPstartDate><InitialCategoryOfAbuse>PHY" \
            "</InitialCategoryOfAbuse></ChildProtectionPlans>" if cpp else ""
    path.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<Message><Header><Source><LEA>{lea}</LEA></Source></Header><Children><Child>
<ChildIdentifiers><LAchildID>C1</LAchildID><PersonBirthDate>2010-03-27</PersonBirthDate>{sex}</ChildIdentifiers>
<CINdetails><Section47><S47ActualStartDate>{s47}</S47ActualStartDate></Section47>{plans}</CINdetails>
</Child>{extra}</Children></Message>""")
    return path


def _placed(tmp_path, root):
    header, episodes = tmp_path / "header.csv", tmp_path / "episodes.csv"
    header.write_text("CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nC1,2,27/03/2010,WBRI,,,\n")
    episodes.write_text("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,"
                        "URN\nC1,01/02/2026,S,C2,N1,K2,PR4,,,,,,SC900001\n")
    summary("adapt", "ssda903", "--dir", root, "--la", "886", header, episodes)


@pytest.mark.parametrize(("name", "children", "signals"), [
    ("CIN_Census_2024.xml", 2, {"s47": 1, "cpp": 1}),
    ("cin-2022.xml", 1, {"s47": 1, "cpp": 1}),
    ("fake_CIN_data.xml", 332, {}),
])
def test_the_public_cin_samples_read_with_only_their_real_data_problems(name, children, signals):
    items = list(CinCensusReader().read(CIN / name))
    records = [i for i in items if not isinstance(i, Problem)]
    problems = [(p.code, p.field) for p in items if isinstance(p, Problem)]
    assert sum(r.table == "child" for r in records) == children
    assert {t: n for t in ("s47", "cpp") if (n := sum(r.table == t for r in records))} == signals
    # CIN_Census_2024.xml has the stray text "PersonBirthDate" after <UPNunknown>: a real problem in the file.
    assert problems == ([("stray-text", "UPNunknown")] if name == "CIN_Census_2024.xml" else [])


def test_both_sex_encodings_read_as_m_f_u(tmp_path):
    for given, expected in (("<Sex>F</Sex>", "F"), ("<GenderCurrent>1</GenderCurrent>", "M"),
                            ("<GenderCurrent>9</GenderCurrent>", "U")):
        records = list(CinCensusReader().read(cin_file(tmp_path / "c.xml", sex=given)))
        assert next(r for r in records if r.table == "child").values["SEX"] == expected


def test_a_section_47_about_a_child_placed_elsewhere_is_a_concern_to_the_host_once(tmp_path, exchange):
    _placed(tmp_path, exchange)
    census = cin_file(tmp_path / "cin.xml", s47="2026-03-01", cpp="2026-03-20")
    out = summary("adapt", "cin", "--dir", exchange, "--la", "886", census)
    assert out["messages_built"] == {"concern-notification": 2} and out["sent"] == 2
    assert summary("adapt", "cin", "--dir", exchange, "--la", "886", census)["unchanged"] == 2
    assert routed(exchange) == 3  # the placement and the two concerns


def test_signals_before_the_placement_or_for_unplaced_children_are_not_sent(tmp_path, exchange):
    _placed(tmp_path, exchange)
    out = summary("adapt", "cin", "--dir", exchange, "--la", "886", cin_file(tmp_path / "c.xml", s47="2025-12-01"))
    assert out["messages_built"] == {} and out["findings"] == {}
    # The file's header, the child and its Section 47 are each accounted for, none silently.
    assert out["rows"]["not_notifiable"] == 3 == out["rows_read"]
    assert out["not_notifiable"] == {"file-header": 1, "not-placed-elsewhere": 2}


def test_a_file_from_another_authority_sends_nothing(tmp_path, exchange):
    _placed(tmp_path, exchange)
    out = summary("adapt", "cin", "--dir", exchange, "--la", "886", cin_file(tmp_path / "c.xml", lea="201"), code=1)
    assert out["messages_built"] == {} and out["findings"] == {"wrong-authority": 1}
    assert out["rows"]["refused"] == out["rows_read"] == 3
    split = summary("adapt", "cin", "--dir", exchange, "--la", "886", "--split-by-la",
                    cin_file(tmp_path / "c.xml", lea="201"))
    assert split["findings"] == {} and split["not_notifiable"] == {"other-la": 3} and split["messages_built"] == {}


def test_a_census_whose_entries_disagree_about_a_child_holds_its_concerns(tmp_path, exchange):
    _placed(tmp_path, exchange)
    twice = "<Child><ChildIdentifiers><LAchildID>C1</LAchildID><PersonBirthDate>2011-01-01</PersonBirthDate>" \
            "</ChildIdentifiers></Child>"
    out = summary("adapt", "cin", "--dir", exchange, "--la", "886", "--report", tmp_path / "r.json",
                  cin_file(tmp_path / "c.xml", s47="2026-03-01", extra=twice), code=1)
    assert out["messages_built"] == {} and out["findings"] == {"conflicting-child-facts": 1}
    assert out["rows"]["held_back"] == 3  # both entries for the child and its Section 47


def test_entity_attacks_are_refused_and_a_truncated_file_keeps_what_came_before(tmp_path):
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><Message>&x;'
                   "</Message>")
    assert [p.code for p in CinCensusReader().read(xxe)] == ["xml-doctype"]
    whole = cin_file(tmp_path / "whole.xml", extra="<Child><ChildIdentifiers><LAchildID>C2</LAchildID>")
    items = list(CinCensusReader().read(whole))
    assert [r.values["CHILD"] for r in items if not isinstance(r, Problem) and r.table == "child"] == ["C1"]
    assert isinstance(items[-1], Problem) and items[-1].code == "xml-malformed"
