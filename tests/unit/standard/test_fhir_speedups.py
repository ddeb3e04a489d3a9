"""The faster null check behaves exactly like fhir_core's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from standard.validator import structure_layer


def test_speedups_are_installed_for_the_pinned_fhir_core():
    # In a fresh interpreter: in this one, another test may have imported the FHIR models first, and then
    # the speedups rightly stay out (they must be in place before the models are built).
    probe = ("from standard.validator import structure_layer\n"
             "structure_layer._model('Patient')\n"
             "from fhir_core.fhirabstractmodel import FHIRAbstractModel\n"
             "print(getattr(FHIRAbstractModel, '_sgx_speedups', False))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[3])
    assert out.stdout.strip() == "True"


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
