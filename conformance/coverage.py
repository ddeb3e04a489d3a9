"""Which checks prove each requirement of the standard: the case suite's invalid cases (through the finding each
expects) and the conformance kits' tests. A requirement nothing checks must be listed here with a reason."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import orjson

from conformance.kits import KITS
from standard import artefacts
from standard import catalogue as cat

# Requirements no automated check can prove yet, each with the reason. Keep this short.
UNCHECKED: dict[str, str] = {}


@dataclass(frozen=True)
class Coverage:
    requirement: cat.Requirement
    cases: tuple[str, ...]
    tests: tuple[str, ...]
    reason: str | None

    @property
    def covered(self) -> bool:
        return bool(self.cases or self.tests)


def coverage() -> list[Coverage]:
    cases: dict[str, list[str]] = defaultdict(list)
    for file in sorted(artefacts.CASES.glob("*.json")):
        for group in orjson.loads(file.read_bytes()):
            for test in group["tests"]:
                finding = test.get("finding")
                for requirement in cat.REQUIREMENTS:
                    if finding and finding in requirement.findings:
                        cases[requirement.id].append(f"{group['message_type']}: {test['description']}")
    tests: dict[str, list[str]] = defaultdict(list)
    for kit in KITS.values():
        for _, test in kit.build().tests():
            for requirement in test.requirements:
                tests[requirement].append(f"{kit.name}/{test.id}")
    return [Coverage(r, tuple(cases[r.id]), tuple(tests[r.id]), UNCHECKED.get(r.id)) for r in cat.REQUIREMENTS]
