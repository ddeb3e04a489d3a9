"""Layer 4 (full validation only): FHIR R4 structure through the fhir.resources R4B models (identical to R4 for
our resources); the reference the fast fhir layer is held to."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from functools import cache

import orjson
from pydantic import ValidationError

from standard.validator import fhir_layer, fhir_speedups
from standard.validator.findings import Finding
from standard.validator.locations import entry_location

_NOT_IN_R4 = fhir_layer.NOT_IN_R4  # R4B added these; a message that carries one is not R4


@cache
def _model(resource_type: str):
    fhir_speedups.install()
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


_URI = re.compile(r"\S*")


def _plain_entry(entry: dict) -> bool:
    """An entry holding only a fullUrl (uri: no whitespace) and a resource: valid as a BundleEntry by definition."""
    url = entry.get("fullUrl")
    return entry.keys() <= {"fullUrl", "resource"} and (url is None or (
        isinstance(url, str) and _URI.fullmatch(url) is not None))


def findings(doc: dict) -> Iterator[Finding]:
    entries = doc.get("entry") if isinstance(doc.get("entry"), list) else []
    shell = {k: v for k, v in doc.items() if k != "entry"}
    # Entries with anything beyond fullUrl and resource are checked by the Bundle model too.
    shell["entry"] = [{k: v for k, v in e.items() if k != "resource"} for e in entries
                      if isinstance(e, dict) and not _plain_entry(e)] or None
    if shell["entry"] is None:
        del shell["entry"]
    yield from _cached("Bundle", shell, "Bundle")
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype in _NOT_IN_R4 or _model(rtype) is None:
            yield Finding("fhir-structure", f"Bundle.entry[{i}].resource.resourceType",
                          "not a FHIR R4 resource type", layer="structure")
            continue
        yield from _cached(rtype, resource, entry_location(i, rtype))


# The same setting, provider and child resources recur in message after message, and
# validating the same bytes gives the same answer: remember recent answers.
_CACHE_SIZE = 4096
_results: OrderedDict[bytes, tuple[tuple[str, str], ...]] = OrderedDict()


def _cached(resource_type: str, data: dict, base: str) -> Iterator[Finding]:
    key = orjson.dumps(data)
    problems = _results.get(key)
    if problems is None:
        problems = tuple(_problems(resource_type, data))
        _results[key] = problems
        if len(_results) > _CACHE_SIZE:
            _results.popitem(last=False)
    else:
        _results.move_to_end(key)
    for suffix, message in problems:
        yield Finding("fhir-structure", base + suffix, message, layer="structure")


def _problems(resource_type: str, data: dict) -> Iterator[tuple[str, str]]:
    try:
        # Calling the class validates once; model_validate() would run fhir_core's custom
        # __init__ inside a second validation pass and do the after-validators twice.
        _model(resource_type)(**data)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            suffix = ""
            for step in error["loc"]:
                if isinstance(step, int):
                    suffix += f"[{step}]"
                elif step != "__root__":
                    suffix += f".{str(step).removesuffix('__ext').removesuffix('_fhir')}"
            # pydantic's msg names the rule, never the rejected value.
            yield suffix, f"not valid FHIR R4: {error['msg']}"
    except (AttributeError, TypeError, ValueError, KeyError):
        # The models crash on some wrong JSON types (a number where a url belongs) instead of reporting them.
        yield "", "not valid FHIR R4: the FHIR models could not read this resource (an element has the wrong JSON type)"
