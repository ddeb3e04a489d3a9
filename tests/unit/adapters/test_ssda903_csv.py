"""The SSDA903 CSV reader on the public sample exports and on broken files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.base import Problem, Record
from adapters.ssda903_csv import Ssda903CsvReader
from tests.conftest import PUBLIC_SAMPLES

SAMPLES = PUBLIC_SAMPLES / "ssda903"


def read(path: Path):
    items = list(Ssda903CsvReader().read(path))
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Problem)]


@pytest.mark.parametrize(("file", "table", "rows"), [
    ("csv_validator_fake/episodes.csv", "episodes", 5050),
    ("csv_validator_fake/header.csv", "header", 2675),
    ("csv_validator_fake/sw_episodes.csv", "social_worker", 1),  # UTF-8 BOM and CRLF
    ("csv_validator_fake/DoLo.csv", "dolo", 1),  # no final newline
    ("csv_liia_sample/SSDA903_2020_episodes.csv", "episodes", 5),
])
def test_public_samples_are_read_without_problems(file, table, rows):
    records, problems = read(SAMPLES / file)
    assert problems == []
    assert len(records) == rows and {r.table for r in records} == {table}


def test_dates_codes_and_sex_are_normalised(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nc1,1,27/03/2008,wbri,,,\nC2,f,2011-09-09,WBRI,,,\n")
    records, problems = read(path)
    assert problems == []
    assert records[0].values == {"CHILD": "c1", "SEX": "M", "DOB": date(2008, 3, 27), "ETHNIC": "WBRI", "UPN": None,
                                 "MOTHER": None, "MC_DOB": None}
    assert records[1].values["SEX"] == "F" and records[1].values["DOB"] == date(2011, 9, 9)


def test_bad_rows_are_named_and_the_rest_still_read(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"
                    "C1,31/02/2020,S,C2,N1,K2,PR4,,,,,,SC123456\n"
                    "C2,01/03/2020,S,C2,N1,K2,PR4\n"
                    "C3,01/03/2020,S,C2,N1,K2,PR4,,,,,,SC123457\n")
    records, problems = read(path)
    assert [r.values["CHILD"] for r in records] == ["C3"]
    assert [(p.code, p.row, p.field) for p in problems] == [("bad-date", 2, "DECOM"), ("row-length", 3, None)]
    assert all("31/02/2020" not in p.message and "C1" not in str(p) for p in problems)


def test_wrong_delimiter_unknown_table_and_empty_file(tmp_path):
    semi = tmp_path / "semi.csv"
    semi.write_text("CHILD;SEX;DOB;ETHNIC;UPN;MOTHER;MC_DOB\n1;1;01/01/2010;WBRI;;;\n")
    assert [p.code for p in read(semi)[1]] == ["wrong-delimiter"]
    odd = tmp_path / "odd.csv"
    odd.write_text("CHILD,SEX,DOB,ETHNIC,UPN,MOTHER\n1,1,01/01/2010,WBRI,,\n")
    (problem,) = read(odd)[1]
    assert problem.code == "unknown-table" and "missing MC_DOB" in problem.message
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert [p.code for p in read(empty)[1]] == ["empty-file"]


def test_windows_1252_text_is_read_with_a_warning(tmp_path):
    path = tmp_path / "header.csv"
    path.write_bytes("CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nCé1,2,01/01/2010,WBRI,,,\n".encode("cp1252"))
    records, problems = read(path)
    assert [p.code for p in problems] == ["encoding-not-utf8"]
    assert records[0].values["CHILD"] == "Cé1"


def test_a_file_without_a_heading_row_is_refused_without_showing_its_first_row():
    path = Path(__file__).resolve().parents[2] / "corpus" / "ssda903" / "no_heading_row.csv"
    records, problems = read(path)
    assert records == [] and [p.code for p in problems] == ["unknown-table"]
    text = str(problems[0])
    assert "may have no heading row" in text
    for value in ("C00001", "JANE", "2012-03-04", "AB1 2CD"):
        assert value not in text


EPISODES_HEADING = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"
REPEATED = (EPISODES_HEADING
            + "C1,01/03/2020,S,C2,N1,K2,PR4,,,,,,SC123456\n"
            + "C2,31/02/2020,S,C2,N1,K2,PR4,,,,,,=1+1\n"
            + "C3,01/03/2020,s,C2,N1,Q9,PR4,,,,,,SC123456\n"
            + "C4,31/02/2020,S,C2,N1,Q9,PR4,,,,,,=1+1\n"
            + "C5,01/03/2020,S,C2,N1,K2,PR4,,,,,,SC123456\n"
            + "s,01/03/2020,s,C2,N1,K2,PR4,,,,,,SC123456\n")  # one cell, two columns: kept as it is, and a code


def _read_repeated(tmp_path: Path):
    path = tmp_path / "episodes.csv"
    path.write_text(REPEATED)
    records, problems = read(path)
    return ([(r.row, r.values["CHILD"], r.values["DECOM"], r.values["RNE"], r.values["URN"]) for r in records],
            [(p.code, p.row, p.field) for p in problems])


EXPECTED_REPEATED = (
    [(2, "C1", date(2020, 3, 1), "S", "SC123456"), (6, "C5", date(2020, 3, 1), "S", "SC123456"),
     (7, "s", date(2020, 3, 1), "S", "SC123456")],
    [("bad-date", 3, "DECOM"), ("formula-text", 3, "URN"), ("bad-code", 4, "PLACE"),
     ("bad-date", 5, "DECOM"), ("bad-code", 5, "PLACE"), ("formula-text", 5, "URN")])


def test_a_repeated_cell_is_judged_on_every_row_it_is_on(tmp_path):
    # Each distinct cell is cleaned once, but a problem names its row: the same bad date, code or formula text on
    # a later row is a finding for that row, never a value remembered from the first.
    assert _read_repeated(tmp_path) == EXPECTED_REPEATED


def test_a_column_whose_memory_is_full_is_still_cleaned(tmp_path, monkeypatch):
    import adapters.ssda903_csv.reader as reader

    monkeypatch.setattr(reader, "_REMEMBERED_PER_COLUMN", 1)
    assert _read_repeated(tmp_path) == EXPECTED_REPEATED


def test_a_long_cell_is_not_remembered(tmp_path, monkeypatch):
    import adapters.ssda903_csv.reader as reader

    path = tmp_path / "episodes.csv"
    long_postcode = "X" * (reader._REMEMBERED_LENGTH + 1)
    path.write_text(EPISODES_HEADING + f"C1,01/03/2020,S,C2,N1,K2,PR4,,,,,{long_postcode},SC123456\n" * 2)
    seen: dict = {}
    original = reader.clean

    def counting(column, cell, file, row):
        seen[column] = seen.get(column, 0) + 1
        return original(column, cell, file, row)

    monkeypatch.setattr(reader, "clean", counting)
    records, _ = read(path)
    assert [r.values["PL_POST"] for r in records] == [long_postcode] * 2
    assert seen["PL_POST"] == 2 and seen["URN"] == 1  # the long cell cleaned on each row; the short one once


def test_twin_remembering_problems_with_values_names_the_wrong_rows(tmp_path, monkeypatch):
    # The broken twin: a memo of whole outcomes, problems included, so a repeated bad cell repeats the first row.
    import adapters.ssda903_csv.reader as reader

    seen: dict = {}
    original = reader.clean

    def remembering(column, cell, file, row):
        return seen.setdefault((column, cell), original(column, cell, file, row))

    monkeypatch.setattr(reader, "clean", remembering)
    monkeypatch.setattr(reader, "_REMEMBERED_PER_COLUMN", 0)  # its own memo only: the reader's stays empty
    assert _read_repeated(tmp_path) != EXPECTED_REPEATED
