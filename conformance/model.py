"""The shapes of a test kit and of its results. Tests are plain functions registered on a Group; the result set is
closed (pass, fail, skip, error), every skip says why, and every test names the requirements it proves."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from standard.errors import ConformanceError


class Result(StrEnum):
    """What a test can end in; nothing else."""

    PASS = "pass"  # noqa: S105 - a test result, not a password
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"  # the test itself could not run to a verdict (a fault in the kit or its set-up)


@dataclass(frozen=True)
class Evidence:
    """What a verdict rests on: where (file, FHIRPath location) and what was seen. Never a personal value."""

    where: str
    what: str


@dataclass
class Outcome:
    result: Result
    message: str = ""
    evidence: list[Evidence] = field(default_factory=list)

    @classmethod
    def passed(cls, message: str = "") -> Outcome:
        return cls(Result.PASS, message)

    @classmethod
    def failed(cls, message: str, evidence: list[Evidence] | None = None) -> Outcome:
        return cls(Result.FAIL, message, evidence or [])

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls(Result.SKIP, reason)


@dataclass(frozen=True)
class Test:
    """One check. `run(context)` returns an Outcome; it may raise, which is reported as an error."""

    id: str
    title: str
    requirements: tuple[str, ...]
    run: Callable[[Any], Outcome]
    description: str = ""


@dataclass
class Group:
    id: str
    title: str
    tests: list[Test] = field(default_factory=list)

    def test(self, id: str, title: str, requirements: tuple[str, ...], description: str = ""):
        """Register the decorated function as a test of this group."""
        def register(function: Callable[[Any], Outcome]) -> Callable[[Any], Outcome]:
            self.add(Test(id, title, tuple(requirements), function, description))
            return function
        return register

    def add(self, test: Test) -> Test:
        if any(t.id == test.id for t in self.tests):
            raise ConformanceError(f"test id {test.id} is used twice in group {self.id}")
        self.tests.append(test)
        return test


@dataclass
class Suite:
    id: str
    title: str
    groups: list[Group] = field(default_factory=list)

    def tests(self) -> Iterator[tuple[Group, Test]]:
        for group in self.groups:
            for test in group.tests:
                yield group, test


@dataclass
class TestRun:
    group: str
    test: Test
    outcome: Outcome
    seconds: float


@dataclass
class Report:
    suite: Suite
    runs: list[TestRun]
    context: dict[str, Any] = field(default_factory=dict)

    def count(self, result: Result) -> int:
        return sum(1 for r in self.runs if r.outcome.result is result)

    @property
    def passed(self) -> bool:
        """True when no test failed or errored (skips carry their reasons and do not fail a run)."""
        return not any(r.outcome.result in (Result.FAIL, Result.ERROR) for r in self.runs)


def run_suite(suite: Suite, context: Any, *, on_test: Callable[[TestRun], None] = lambda _: None) -> Report:
    """Run every test of the suite in order; a test that raises is an error, never a crashed run."""
    runs = []
    for group, test in suite.tests():
        start = time.perf_counter()
        try:
            outcome = test.run(context)
            if not isinstance(outcome, Outcome):
                raise ConformanceError(f"test {test.id} returned {type(outcome).__name__}, not an Outcome")
        except Exception as exc:  # noqa: BLE001 - a fault in one test is that test's error, not the run's end
            where = traceback.extract_tb(exc.__traceback__)[-1]
            outcome = Outcome(Result.ERROR, f"the test could not run: {type(exc).__name__} "
                              f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
        run = TestRun(group.id, test, outcome, time.perf_counter() - start)
        runs.append(run)
        on_test(run)
    return Report(suite, runs)
