"""The scenario inputs the kit ships: the facts a system under test is given (who placed which child where and
when, an incident, an allegation) and what the message it produces must then carry, as FHIRPath expectations.
Each scenario is a JSON file in `conformance/scenarios/`, readable by a vendor without our code."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson

from standard import catalogue as cat
from standard.errors import ConformanceError

FOLDER = Path(__file__).resolve().parent / "scenarios"


@dataclass(frozen=True)
class Expectation:
    requirement: str
    what: str
    path: str
    value: str


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    event: str
    sender: str
    facts: dict
    expect: tuple[Expectation, ...]
    security: tuple[str, ...]


def _scenario(path: Path) -> Scenario:
    data = orjson.loads(path.read_bytes())
    try:
        cat.get_event(data["event"])
        expect = tuple(Expectation(e["requirement"], e["what"], e["path"], str(e["value"])) for e in data["expect"])
        for e in expect:
            if e.requirement not in cat.REQUIREMENTS_BY_ID:
                raise ConformanceError(f"{path.name}: expectation '{e.what}' cites unknown requirement "
                                       f"{e.requirement}")
        return Scenario(data["id"], data["title"], data["event"], data["sender"], data["facts"], expect,
                        tuple(data.get("security", ())))
    except KeyError as exc:
        raise ConformanceError(f"{path.name}: the scenario needs {exc.args[0]!r}") from None


@cache
def scenarios() -> tuple[Scenario, ...]:
    """Every shipped scenario, in file name order."""
    found = tuple(_scenario(p) for p in sorted(FOLDER.glob("*.json")))
    ids = [s.id for s in found]
    if len(set(ids)) != len(ids):
        raise ConformanceError("two scenario files share an id")
    return found
