"""A faster, equivalent `reject_null_complex_elements` for fhir_core 1.1.12.

fhir_core's before-validator re-inspects the type of every field of a model on every
validation (a third of the time spent validating a resource). The answer depends only on the
class, so this version works it out once per class. Behaviour is identical: the same error
type, message and location for a null inside a list of complex elements.

Pydantic resolves a model's validators by attribute name when each subclass is created, so
this must be installed before any fhir.resources model module is imported; `install()` is
called by the structure layer before it imports them, and does nothing on another fhir_core
version (the original, slower check then stays in place).
"""

from __future__ import annotations

import functools
import sys
import typing
from importlib.metadata import version

from fhir_core import fhirabstractmodel
from fhir_core.utils import is_list_type, is_primitive_type
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

PATCHED_VERSION = "1.1.12"


@functools.cache
def _complex_list_fields(cls) -> tuple[tuple[str, str | None], ...]:
    return tuple(
        (name, field.alias)
        for name, field in cls.model_fields.items()
        if is_list_type(field) and not is_primitive_type(field) and not name.endswith("__ext")
    )


def _reject_null_complex_elements(cls, data: typing.Any) -> typing.Any:
    if not isinstance(data, dict):
        return data
    errors = []
    for name, alias in _complex_list_fields(cls):
        key = alias if alias and alias in data else name
        value = data.get(key)
        if isinstance(value, list) and None in value:
            errors.append({
                "type": PydanticCustomError("list_type", "None is not allowed as an element of {field}",
                                            {"field": key}),
                "loc": (key,),
                "input": value,
            })
    if errors:
        raise ValidationError.from_exception_data(cls.__name__, errors)
    return data


def install() -> bool:
    """Install the faster check; True when installed (now or before)."""
    model = fhirabstractmodel.FHIRAbstractModel
    if getattr(model, "_sgx_speedups", False):
        return True
    if version("fhir-core") != PATCHED_VERSION or "fhir.resources.R4B.resource" in sys.modules:
        return False
    model.reject_null_complex_elements = classmethod(_reject_null_complex_elements)
    model._sgx_speedups = True
    return True
