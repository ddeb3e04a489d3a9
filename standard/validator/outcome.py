"""Findings as a FHIR OperationOutcome, the form FHIR tooling and acknowledgements expect."""

from __future__ import annotations

from collections.abc import Iterable

from standard import catalogue as cat
from standard.validator.findings import Finding

FINDING_SYSTEM = f"{cat.CANONICAL}/CodeSystem/finding"

_ISSUE_TYPE = {"parse": "structure", "schema": "invariant", "fhir": "structure", "structure": "structure",
               "profile": "invariant", "business": "business-rule"}


def operation_outcome(findings: Iterable[Finding]) -> dict:
    issues = [
        {
            "severity": f.severity,
            "code": _ISSUE_TYPE.get(f.layer, "invalid"),
            "details": {"coding": [{"system": FINDING_SYSTEM, "code": f.code, "display": f.title}]},
            "diagnostics": f.message,
            "expression": [f.location],
        }
        for f in findings
    ]
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "The message is valid."}]
    return {"resourceType": "OperationOutcome", "issue": issues}
