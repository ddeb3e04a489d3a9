"""The messages kit: a folder of messages a system produced, checked offline against every layer of the standard's
validator and against the shipped scenarios (`<scenario id>.json` in the folder holds the message produced for
that scenario's facts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from conformance import fhirpath
from conformance.model import Evidence, Group, Outcome, Suite
from conformance.scenarios import Scenario, scenarios
from standard import catalogue as cat
from standard.validator import HOT_PATH, Validator, event_of
from standard.validator.findings import ERROR, FINDING_CODES, Finding

# One test per validator layer, so every finding the standard can give belongs to exactly one test.
_STANDARD_TESTS = (
    ("STD-01", "Every file is a JSON FHIR Bundle naming an event of the catalogue", ("parse",)),
    ("STD-02", "Every resource conforms to FHIR R4 and to its profile", ("schema", "fhir", "structure")),
    ("STD-03", "The MessageHeader comes first, fullUrls and ids are unique, focus and references resolve inside "
     "the Bundle", ("profile",)),
    ("STD-04", "Every business rule of the standard holds", ("business",)),
)


def _requirements_of(layers: tuple[str, ...]) -> tuple[str, ...]:
    """The requirements enforced by the findings of these layers, in the catalogue's order."""
    codes = {code for code, (layer, _) in FINDING_CODES.items() if layer in layers}
    return tuple(r.id for r in cat.REQUIREMENTS if codes & set(r.findings))


MAX_EVIDENCE = 20


@dataclass
class MessagesContext:
    """The folder under test, the scenarios selected (all by default), and each file's findings (computed once)."""

    folder: Path
    selected: set[str] | None = None
    # The router's layers: they give the same verdict and codes as full validation (tested on the case suite and
    # generated mutants) at several times its speed, and they are what the exchange will apply to the messages.
    validator: Validator = field(default_factory=lambda: Validator(HOT_PATH))
    _findings: dict[Path, list[Finding]] | None = None

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.json"))

    def findings(self) -> dict[Path, list[Finding]]:
        if self._findings is None:
            self._findings = {f: [x for x in self.validator.iter_findings(f.read_bytes()) if x.severity == ERROR]
                              for f in self.files}
        return self._findings


def _standard_test(layers: tuple[str, ...], what: str):
    def run(ctx: MessagesContext) -> Outcome:
        if not ctx.files:
            return Outcome.failed(f"the folder {ctx.folder} holds no *.json messages")
        evidence = [Evidence(f"{file.name}: {f.location}", f"{f.code}: {f.message}")
                    for file, found in ctx.findings().items() for f in found
                    if f.layer in layers]
        if evidence:
            files = len({e.where.split(":")[0] for e in evidence})
            return Outcome.failed(f"{len(evidence)} finding(s) in {files} file(s): {what}", evidence[:MAX_EVIDENCE])
        return Outcome.passed(f"{len(ctx.files)} message(s) checked")
    return run


def _unique_ids(ctx: MessagesContext) -> Outcome:
    ids: Counter[str] = Counter()
    for file, found in ctx.findings().items():
        if any(f.layer == "parse" for f in found):
            continue
        ident = orjson.loads(file.read_bytes()).get("identifier")
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            ids[ident["value"]] += 1
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        return Outcome.failed(f"{len(repeated)} message id(s) used by more than one message; every message needs "
                              "its own id (a resend of the same message keeps its id)",
                              [Evidence("Bundle.identifier.value", f"{ids[i]} messages share one id")
                               for i in repeated[:MAX_EVIDENCE]])
    return Outcome.passed(f"{sum(ids.values())} distinct message id(s)")


def _scenario_test(scenario: Scenario):
    def run(ctx: MessagesContext) -> Outcome:
        if ctx.selected is not None and scenario.id not in ctx.selected:
            return Outcome.skipped("not selected for this run (--scenario)")
        path = ctx.folder / f"{scenario.id}.json"
        if not path.exists():
            return Outcome.failed(f"no message for this scenario: produce {path.name} from the scenario's facts")
        errors = ctx.findings().get(path, [])
        if any(f.layer == "parse" for f in errors):
            return Outcome.failed("the message could not be read", [Evidence(path.name, errors[0].code)])
        message = orjson.loads(path.read_bytes())
        evidence = []
        if event_of(message) != scenario.event:
            evidence.append(Evidence(f"{path.name}: MessageHeader.eventCoding.code",
                                     f"the scenario is a {scenario.event} message"))
        for e in scenario.expect:
            if e.value not in [str(v) for v in fhirpath.evaluate(e.path, message)]:
                evidence.append(Evidence(f"{path.name}: {e.path}", f"{e.requirement}: {e.what} is not as the "
                                         "scenario states"))
        labels = {c.get("code") for c in fhirpath.evaluate("Bundle.meta.security", message) if isinstance(c, dict)}
        for label in scenario.security:
            if label not in labels:
                evidence.append(Evidence(f"{path.name}: Bundle.meta.security", f"MSG-009: the scenario needs the "
                                         f"security label {label}"))
        if evidence:
            return Outcome.failed(f"{len(evidence)} fact(s) of the scenario missing or wrong", evidence)
        return Outcome.passed(f"all {len(scenario.expect)} facts of the scenario carried")
    return run


def suite() -> Suite:
    standard = Group("standard", "The standard: every message passes every layer of the validator")
    for test_id, title, layers in _STANDARD_TESTS:
        standard.test(test_id, title, _requirements_of(layers))(_standard_test(layers, title.lower()))
    standard.test("STD-05", "Every message has an id of its own", ("MSG-001",))(_unique_ids)
    produced = Group("scenarios", "The scenarios: each message carries the facts it was asked to send")
    for scenario in scenarios():
        requirements = tuple(dict.fromkeys(["MSG-004", *(e.requirement for e in scenario.expect)]))
        produced.test(scenario.id, scenario.title, requirements)(_scenario_test(scenario))
    return Suite("messages", "Messages kit", [standard, produced])
