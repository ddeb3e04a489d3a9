"""XLSX readers: Ofsted provider lists into the directory, Annex A List 8 into placements; formula cells,
error cells, zip bombs and files that are not workbooks are findings, not crashes."""

from __future__ import annotations

import zipfile

import pytest

from adapters.annex_a import AnnexAReader
from adapters.base import Problem
from adapters.ofsted_providers import ProviderListReader
from broker.cli import load_signed
from tests.conftest import PUBLIC_SAMPLES
from tests.unit.adapters.conftest import routed, sgx, summary
from tests.unit.adapters.workbooks import annex_a, list_8_row, workbook

PROVIDER_HEADINGS = ["Local authority", "URN", "Provider type", "Provider name", "Registration status",
                     "Deregistration date", "Provider postcode", "Placement code"]


def _read(reader, path):
    items = list(reader.read(path))
    return [i for i in items if not isinstance(i, Problem)], [i for i in items if isinstance(i, Problem)]


def test_provider_list_rows_become_settings_with_host_la_type_and_postcode(tmp_path):
    book = workbook(tmp_path / "providers.xlsx", {"Providers": [
        PROVIDER_HEADINGS,
        ["Doncaster", "SC900010", "Children's Home", "Fixture House", "Registered", None, "dn1 1aa", "K2"],
        ["Bristol, City of", "sc900011", "Residential Special School", "Fixture School", "Registered", None, "", "S1"],
        ["Kent", "SC900012", "Children's Home", "Closed House", "Registered", "2024-01-01", "CT1 1AA", "K2"],
        ["Atlantis", "SC900013", "Children's Home", "Lost House", "Registered", None, "", "K2"],
        ["Doncaster", "SC900014", "Children's Home", "=A1", "Registered", None, "", "K2"],
        ["Doncaster", "nonsense", "Children's Home", "Odd House", "Registered", None, "", "K2"],
    ]})
    records, problems = _read(ProviderListReader(), book)
    assert [(r.values["URN"], r.values["HOST_LA"], r.values["TYPE"], r.values["POSTCODE"]) for r in records] == [
        ("SC900010", "la-371", "childrens-home", "DN1 1AA"),
        ("SC900011", "la-801", "residential-special-school", None)]
    assert [(p.code, p.row) for p in problems] == [("unknown-la", 5), ("formula-cell", 6), ("bad-urn", 7)]
    assert all(p.file == "providers.xlsx [Providers]" for p in problems)
    assert "D6" in problems[1].message and "=A1" not in problems[1].message


def test_import_settings_fills_the_signed_directory(tmp_path, exchange):
    book = workbook(tmp_path / "providers.xlsx", {"Providers": [
        PROVIDER_HEADINGS,
        ["Sheffield", "SC900020", "Children's Home", "Hill House", "Registered", None, "S1 1AA", "K2"],
        ["Atlantis", "SC900021", "Children's Home", "Lost House", "Registered", None, "", "K2"],
        ["Essex", "SC900022", "Children's Home", "Marsh House", "Registered", None, "", "K2"]]})
    result = sgx("directory", "import-settings", "--dir", exchange, book, code=1)
    assert "2 added" in result.output and "unknown-la" in result.output
    assert "check-host-icb" in result.output and "SC900022" in result.output  # Essex spans several ICBs
    sgx("directory", "sign", "--dir", exchange)
    directory = load_signed(exchange)
    setting = directory.setting("SC900020")
    assert (setting.host_la, setting.type, setting.postcode) == ("la-373", "childrens-home", "S1 1AA")
    assert setting.host_icb == "icb-QF7"  # Sheffield is in South Yorkshire ICB
    assert directory.settings_at("S1 1AA") == [setting] and directory.setting("SC900021") is None


@pytest.mark.parametrize("name", ["ch_fake.xlsx", "scp_ch_2025_fake.xlsx"])
def test_the_public_provider_lists_read_with_only_their_real_data_problems(name):
    records, problems = _read(ProviderListReader(), PUBLIC_SAMPLES / "ofsted_provider_lists" / name)
    # Both fake lists carry URNs that are not Ofsted URNs ("njascn", 1), and the 2025 one an authority named
    # "Provider LA": real problems, each reported by row and column. Its one SA row closed in 2024.
    expected = [("bad-urn", 2, "URN")] + ([("unknown-la", 2, "Local authority")] if name.startswith("scp") else [])
    assert records == [] and [(p.code, p.row, p.field) for p in problems] == expected


def test_annex_a_sample_list_8_reads_codes_out_of_labels():
    records, problems = _read(AnnexAReader(), PUBLIC_SAMPLES / "annex_a" / "Annex_A.xlsx")
    assert problems == [] and len(records) == 5
    first = records[0].values
    assert (first["SEX"], first["LS"], first["PLACE"], first["PLACE_PROVIDER"]) == ("F", "E1", "U6", "PR4")
    assert records[4].values["REC"] == "E47" and records[4].values["DEC"] is not None


def test_annex_a_placements_are_sent_once_and_formula_cells_are_findings(tmp_path, exchange):
    book = annex_a(tmp_path / "annex.xlsx", list_8_row("A1", urn="SC900001"),
                   list_8_row("A2", urn="SC900001", start="=F2+1"),
                   list_8_row("A3", urn="SC900001", place="z) Nothing"))
    out = summary("adapt", "annex-a", "--dir", exchange, "--la", "886", book, "--report", tmp_path / "r.html",
                  code=1)
    assert out["messages_built"] == {"placement-started": 1} and out["sent"] == 1
    assert out["findings"] == {"bad-code": 1, "formula-cell": 1}  # one finding per bad cell
    page = (tmp_path / "r.html").read_text()
    assert "formula-cell" in page and "annex.xlsx [List 8]" in page and "=F2+1" not in page
    assert summary("adapt", "annex-a", "--dir", exchange, "--la", "886", book, code=1)["unchanged"] == 1
    assert routed(exchange) == 1


def test_a_workbook_without_list_8_is_one_clear_finding(tmp_path, exchange):
    book = workbook(tmp_path / "annex.xlsx", {"List 1": [["Child Unique ID"], ["A1"]]})
    out = summary("adapt", "annex-a", "--dir", exchange, "--la", "886", book, code=1)
    assert out["findings"] == {"missing-sheet": 1}


def test_a_zip_bomb_is_refused_before_it_is_opened(tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<a>" + b" " * (300 * 1024 * 1024) + b"</a>")
    records, problems = _read(AnnexAReader(), bomb)
    assert records == [] and [p.code for p in problems] == ["xlsx-too-large"]


def test_a_file_that_is_not_a_workbook_is_a_finding(tmp_path):
    fake = tmp_path / "annex.xlsx"
    fake.write_text("Child Unique ID,Gender\n")
    assert [p.code for p in _read(AnnexAReader(), fake)[1]] == ["not-xlsx"]
