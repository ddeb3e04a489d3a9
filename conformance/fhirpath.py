"""The small FHIRPath subset scenario expectations are written in, so a person (or a vendor's own tooling) can
read them: a resource type, then element names and `where(element='value')` filters, e.g.
``Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number').value``. The type `Bundle` is the message
itself; any other type selects every resource of that type among the message's entries."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from standard.errors import ConformanceError

_STEP = re.compile(r"where\((?P<name>[A-Za-z]+)\s*=\s*'(?P<value>[^']*)'\)|(?P<element>[A-Za-z][A-Za-z0-9]*)")


@cache
def _steps(expression: str) -> tuple[str, tuple[tuple[str, str | None], ...]]:
    head, _, rest = expression.partition(".")
    steps, position = [], 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if not match:
            raise ConformanceError(f"cannot read the expression {expression!r} at {rest[position:]!r}; the kit "
                                   "knows element names and where(element='value')")
        steps.append((match["name"], match["value"]) if match["name"] else (match["element"], None))
        position = match.end()
        if position < len(rest):
            if rest[position] != ".":
                raise ConformanceError(f"expected '.' in {expression!r} at {rest[position:]!r}")
            position += 1
    return head, tuple(steps)


def _children(items: list[Any], name: str) -> list[Any]:
    out = []
    for item in items:
        value = item.get(name) if isinstance(item, dict) else None
        if isinstance(value, list):
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


def evaluate(expression: str, message: dict) -> list[Any]:
    """Every value the expression selects in the message (empty when nothing matches)."""
    head, steps = _steps(expression)
    if head == "Bundle":
        items: list[Any] = [message]
    else:
        entries = message.get("entry") if isinstance(message.get("entry"), list) else []
        items = [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                 and e["resource"].get("resourceType") == head]
    for name, value in steps:
        if value is None:
            items = _children(items, name)
        else:
            items = [i for i in items if value in [str(v) for v in _children([i], name)]]
    return items
