"""The published oversight rules and clocks (standard/source/oversight-rules.json) read into frozen objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import orjson

from standard.artefacts import ROOT as STANDARD_ROOT
from standard.errors import OversightError

RULES_FILE = STANDARD_ROOT / "source" / "oversight-rules.json"
SCHEMA_FILE = STANDARD_ROOT / "source" / "oversight-rules.schema.json"


@dataclass(frozen=True)
class SignalKind:
    """What one kind of signal is, which source family it comes from and what it weighs."""

    kind: str
    title: str
    source: str
    weight: float
    concern: bool
    made_from: str


@dataclass(frozen=True)
class Rule:
    """One escalation rule: a threshold on the signals of a setting (or a provider's settings) in a window."""

    id: str
    type: str
    scope: str
    title: str
    kinds: frozenset[str]
    window_days: int
    min_weight: float
    rearm_days: int
    why: str
    reason: str = "triangulation-threshold"
    per_child_year: float | None = None
    min_sources: int | None = None
    baseline_days: int | None = None
    min_history_days: int | None = None
    factor: float | None = None

    def threshold(self, children: int) -> float:
        """The total at which the rule fires for this many children placed: never below min_weight."""
        if self.per_child_year is None:
            return self.min_weight
        return max(self.min_weight, self.per_child_year * max(children, 1) * self.window_days / 365.0)


@dataclass(frozen=True)
class Clock:
    """A statutory clock: what must follow, or recur, and by when."""

    id: str
    type: str
    title: str
    source: str
    to: tuple[str, ...]
    kind: str | None = None
    kinds: frozenset[str] = frozenset()
    setting_types: frozenset[str] = frozenset()
    every: int = 1
    grace_days: int = 0
    after: str | None = None
    expect: str | None = None
    working_days: int = 0


@dataclass(frozen=True)
class RuleSet:
    """The whole published rule set, by version."""

    id: str
    version: str
    status: str
    sources: dict[str, str]
    signals: dict[str, SignalKind]
    rules: tuple[Rule, ...]
    clocks: tuple[Clock, ...]
    origin: str = field(default="", compare=False)

    def signal(self, kind: str) -> SignalKind:
        return self.signals[kind]

    def rules_for(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if kind in r.kinds)


def _problem(origin: str, error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{origin}: at {where}: {error.message}; see docs/oversight.md for the rules' form"


def parse(document: dict, origin: str = "rules") -> RuleSet:
    """A RuleSet from a rules document, checked against the published schema and for consistency."""
    schema = orjson.loads(SCHEMA_FILE.read_bytes())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=lambda e: e.path)
    if errors:
        raise OversightError(_problem(origin, errors[0]))
    sources = dict(document["sources"])
    signals: dict[str, SignalKind] = {}
    for item in document["signals"]:
        if item["source"] not in sources:
            raise OversightError(f"{origin}: signal kind {item['kind']!r} names source {item['source']!r}, which "
                                 f"is not one of sources ({', '.join(sources)}); add it to sources or fix the name")
        signals[item["kind"]] = SignalKind(item["kind"], item["title"], item["source"], float(item["weight"]),
                                           bool(item["concern"]), item["from"])
    rules = []
    for item in document["rules"]:
        unknown = sorted(set(item["kinds"]) - set(signals))
        if unknown:
            raise OversightError(f"{origin}: rule {item['id']} names unknown signal kinds {unknown}; "
                                 "each must be a kind listed under signals")
        rules.append(Rule(
            id=item["id"], type=item["type"], scope=item["scope"], title=item["title"],
            kinds=frozenset(item["kinds"]), window_days=item["window_days"], min_weight=float(item["min_weight"]),
            rearm_days=item["rearm_days"], why=item["why"], reason=item["reason"],
            per_child_year=item.get("per_child_year"),
            min_sources=item.get("min_sources"), baseline_days=item.get("baseline_days"),
            min_history_days=item.get("min_history_days"), factor=item.get("factor")))
    if len({r.id for r in rules}) != len(rules):
        raise OversightError(f"{origin}: two rules share an id; every rule id must be unique")
    clocks = []
    for item in document["clocks"]:
        named = [item[k] for k in ("kind", "after", "expect") if k in item] + list(item.get("kinds", ()))
        unknown = sorted(set(named) - set(signals))
        if unknown:
            raise OversightError(f"{origin}: clock {item['id']} names unknown signal kinds {unknown}")
        clocks.append(Clock(
            id=item["id"], type=item["type"], title=item["title"], source=item["source"], to=tuple(item["to"]),
            kind=item.get("kind"), kinds=frozenset(item.get("kinds", ())),
            setting_types=frozenset(item.get("setting_types", ())), every=item.get("every", 1),
            grace_days=item.get("grace_days", 0), after=item.get("after"), expect=item.get("expect"),
            working_days=item.get("working_days", 0)))
    return RuleSet(document["id"], document["version"], document["status"], sources, signals, tuple(rules),
                   tuple(clocks), origin)


def load(path: Path | None = None) -> RuleSet:
    """Read a rules file (the published one by default)."""
    path = path or RULES_FILE
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise OversightError(f"{path}: no such rules file; give the path of a rules JSON file") from None
    except orjson.JSONDecodeError as exc:
        raise OversightError(f"{path}: not JSON ({exc.args[0].split(':')[0]}); check the file") from None
    return parse(document, str(path))


@cache
def published() -> RuleSet:
    """The rule set the standard publishes."""
    return load(RULES_FILE)
