"""Ofsted provider lists across the published layouts: every sheet read, closing dates judged on evidence, every
problem of a row reported, headings recognised whatever their case and spacing."""

from __future__ import annotations

from datetime import date

from adapters.base import Problem
from adapters.ofsted_providers import ProviderListReader
from tests.unit.adapters.workbooks import workbook

TODAY = date(2026, 11, 26)
PROVIDERS = ["Local authority", "URN", "Provider type", "Provider name", "Registration status",
             "Deregistration date", "Provider postcode"]
SA_PROVIDERS = ["Provider local authority", "Setting Local Authority", "URN", "Provider type", "Provider name",
                "Registration status", "Closed date", "Setting status", "Setting address postcode"]


def _read(path):
    items = list(ProviderListReader(today=TODAY).read(path))
    return ([i.values for i in items if not isinstance(i, Problem)],
            [(i.code, i.row, i.field) for i in items if isinstance(i, Problem)])


def test_supported_accommodation_rows_are_settings_of_their_setting_authority(tmp_path):
    book = workbook(tmp_path / "list.xlsx", {
        "Providers": [PROVIDERS, ["Doncaster", "SC900010", "Children's Home", "Fixture House", "Registered", None,
                                  "DN1 1AA"]],
        "SA Providers": [SA_PROVIDERS, ["Leeds", "Sheffield", "2900011", "Supported accommodation", "Step House",
                                        "Registered", None, "Active", "s1 1aa"]]})
    records, problems = _read(book)
    assert problems == []
    assert [(r["URN"], r["HOST_LA"], r["TYPE"], r["POSTCODE"]) for r in records] == [
        ("SC900010", "la-371", "childrens-home", "DN1 1AA"),
        ("2900011", "la-373", "supported-accommodation", "S1 1AA")]


def test_a_setting_is_closed_only_on_evidence(tmp_path):
    rows = [["Doncaster", f"SC90002{i}", "Children's Home", f"House {i}", "Registered", closed, "DN1 1AA"]
            for i, closed in enumerate(["na", "N/A", "-", None, "2027-03-01", "31/12/2025", date(2024, 1, 1),
                                        "soon"])]
    rows.append(["Doncaster", "SC900029", "Children's Home", "House 9", "Closed", None, "DN1 1AA"])
    records, problems = _read(workbook(tmp_path / "list.xlsx", {"Providers": [PROVIDERS, *rows]}))
    # Open: na, N/A, -, blank, a date still to come, and text that is not a date (kept, with a problem).
    assert [r["URN"] for r in records] == ["SC900020", "SC900021", "SC900022", "SC900023", "SC900024", "SC900027"]
    assert problems == [("bad-closed-date", 9, "Deregistration date")]


def test_every_problem_of_a_row_is_reported_with_its_column(tmp_path):
    book = workbook(tmp_path / "list.xlsx", {"Providers": [
        PROVIDERS, ["Atlantis", "nonsense", "Children's Home", None, "Registered", None, ""]]})
    records, problems = _read(book)
    assert records == []
    assert problems == [("bad-urn", 2, "URN"), ("unknown-la", 2, "Local authority"),
                        ("missing-value", 2, "Provider name")]


def test_older_layout_headings_are_recognised_whatever_their_case_and_spacing(tmp_path):
    older = ["LOCAL AUTHORITY", "urn", "Provision  Type", "Setting Name", "Provider Status", "Closure Date",
             "Setting Postcode"]
    book = workbook(tmp_path / "list.xlsx", {"Provider information": [
        older, ["Kent", "SC900030", "Secure Children's Home", "Gate House", "Active", None, "ct1 1aa"]]})
    records, problems = _read(book)
    assert problems == []
    assert [(r["URN"], r["HOST_LA"], r["TYPE"], r["POSTCODE"]) for r in records] == [
        ("SC900030", "la-886", "secure-childrens-home", "CT1 1AA")]
