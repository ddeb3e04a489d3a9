"""Write the XLSX files of the bad-input corpus (run from the repository root when they need changing)."""

from pathlib import Path

from tests.unit.adapters.workbooks import LIST_8_HEADINGS, list_8_row, workbook

HERE = Path(__file__).parent / "xlsx"


def main() -> None:
    HERE.mkdir(exist_ok=True)
    workbook(HERE / "annex_a_formulas_and_errors.xlsx", {"List 8": [
        LIST_8_HEADINGS,
        list_8_row("CHILDX1", urn="SC900001"),
        list_8_row("CHILDX2", urn="SC900001", start="=F2+5"),
        list_8_row("CHILDX3", urn="#N/A"),
        list_8_row("CHILDX4", urn="SC900001", dob="32/13/2010"),
        list_8_row("CHILDX5", urn="SC900001", place="Unknown placement"),
    ]})
    workbook(HERE / "annex_a_no_list_8.xlsx", {"List 1": [["Child Unique ID"], ["CHILDX1"]]})
    # One child twice with different dates of birth; one child in two placements at once; a text cell a
    # spreadsheet would run; one good row.
    workbook(HERE / "annex_a_conflicts.xlsx", {"List 8": [
        LIST_8_HEADINGS,
        list_8_row("CHILDX1", urn="SC900001", dob="27/03/2010"),
        list_8_row("CHILDX1", urn="SC900001", dob="14/07/2011", start="01/03/2026"),
        list_8_row("CHILDX2", urn="SC900001", start="01/01/2026"),
        list_8_row("CHILDX2", urn="SC900001", start="01/02/2026"),
        list_8_row("CHILDX3", urn="SC900001", postcode="@SUM(1+1)"),
        list_8_row("CHILDX4", urn="SC900001"),
    ]})
    # A regional workbook: an LA column says whose row each is.
    workbook(HERE / "annex_a_regional.xlsx", {"List 8": [
        [*LIST_8_HEADINGS, "LA"],
        [*list_8_row("CHILDX1", urn="SC900001"), "886"],
        [*list_8_row("CHILDX2", urn="SC900001"), "Doncaster"],
    ]})
    (HERE / "annex_a_not_a_workbook.xlsx").write_text("Child Unique ID,Gender\nCHILDX1,a) Male\n")


if __name__ == "__main__":
    main()
