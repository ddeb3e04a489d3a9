"""Local authorities as exports name them: codes, ONS codes, names with and without "council", districts."""

from __future__ import annotations

import pytest

from adapters.authorities import Authorities


@pytest.fixture(scope="module")
def authorities():
    return Authorities()


@pytest.mark.parametrize(("text", "code"), [
    ("886", "886"), ("Kent", "886"), ("KENT COUNTY COUNCIL", "886"), ("E10000016", "886"),
    ("Bristol, City of", "801"), ("E06000023", "801"), ("City of London", "201"),
    ("BARKING AND DAGENHAM LONDON BOROUGH", "301"), ("Sheffield City Council", "373"),
    ("East Lindsey", "925"), ("E07000137", "925"),  # a district: its county, Lincolnshire, is the LA
])
def test_codes_names_and_districts_resolve_to_the_childrens_services_authority(authorities, text, code):
    assert authorities.find(text).dfe_code == code


def test_special_values_and_unknown_names(authorities):
    assert authorities.find("CON").confidential and authorities.find("con").participant is None
    assert authorities.find("WAL").special == "WAL"
    for text in ("Home Town", "London", "", None):  # a word every London name shares is not a name
        assert authorities.find(text) is None
