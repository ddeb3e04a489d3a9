"""The faster null check behaves exactly like fhir_core's own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from standard.validator import fhir_speedups, structure_layer


def test_speedups_are_installed_for_the_pinned_fhir_core():
    structure_layer._model("Patient")
    assert fhir_speedups.install() is True


def test_null_in_a_list_of_complex_elements_is_still_rejected():
    model = structure_layer._model("Patient")
    with pytest.raises(ValidationError) as caught:
        model(resourceType="Patient", name=[{"family": "A"}, None])
    (error,) = caught.value.errors(include_input=False)
    assert error["loc"] == ("name",)
    assert error["msg"] == "None is not allowed as an element of name"


def test_nulls_in_primitive_lists_are_left_alone():
    model = structure_layer._model("HumanName")
    model(given=["A", None], _given=[None, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}])
