"""Conformance certificates: a passing run, signed by the conformance operator's key, that anyone holding the
operator's public key can check offline (and against the report it certifies, by its digest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broker import signing
from broker.keys import SigningKey
from conformance.model import Report, Result
from standard import catalogue as cat
from standard.errors import ConformanceError, SignatureRejected

TYP = "sgx-conformance-certificate+jws"


@dataclass(frozen=True)
class Certificate:
    claims: dict
    expired: bool


def issue(report: Report, report_digest: str, key: SigningKey, *, operator: str, system: str, version: str,
          participant: str | None = None, valid_for: timedelta = timedelta(days=365),
          now: datetime | None = None) -> str:
    """The signed certificate of a passing run.

    Raises:
        ConformanceError: the run did not pass, or the validity is not positive.
    """
    if not report.passed:
        raise ConformanceError("only a run in which every test passed can be certified; fix the failures first")
    if valid_for <= timedelta(0):
        raise ConformanceError("a certificate must be valid for a positive time")
    moment = now or datetime.now(UTC)
    passed = sorted(proved(report))
    if not passed:
        raise ConformanceError("the run proved no requirement (no message of any event was checked); nothing to "
                               "certify")
    claims = {"iss": operator, "sub": participant, "system": {"name": system, "version": version},
              "kit": report.suite.id, "standard": cat.VERSION, "requirements": passed,
              "tests": {r.value: report.count(r) for r in Result},
              "skipped": sorted(run.test.id for run in report.runs if run.outcome.result is Result.SKIP),
              "iat": int(moment.timestamp()), "exp": int((moment + valid_for).timestamp()), "report": report_digest}
    return signing.sign_attached({k: v for k, v in claims.items() if v is not None}, key, TYP)


def proved(report: Report) -> set[str]:
    """The requirements a passing run proves, and no more: those of every passed scenario, those of the sender's
    and receiver's behaviours whose every test passed, and the requirements of each event the run saw messages of
    (`report.context["events"]`) when the standard's tests passed. A standard test passing over a folder with no
    escalation proves nothing about escalations."""
    runs = [r for r in report.runs if r.outcome.result is Result.PASS]
    from_scenarios = {req for r in runs if r.group == "scenarios" for req in r.test.requirements}
    # A behaviour of the sender or receiver kit is proved when every test that checks it passed: a receiver
    # without --sut-stored skips the check that it stores before acknowledging, so RCV-002 is not claimed.
    results: dict[str, set[Result]] = {}
    for r in report.runs:
        if r.group not in ("standard", "scenarios"):
            for req in r.test.requirements:
                results.setdefault(req, set()).add(r.outcome.result)
    from_behaviour = {req for req, seen in results.items() if seen == {Result.PASS}}
    standard_ran = {r.test.id for r in report.runs if r.group == "standard"}
    standard_passed = {r.test.id for r in runs if r.group == "standard"}
    from_events: set[str] = set()
    if standard_ran and standard_ran == standard_passed:
        for code in report.context.get("events", []):
            event = cat.EVENTS_BY_CODE.get(code)
            from_events.update(event.requirements if event else ())
    return from_scenarios | from_behaviour | from_events


def verify(jws: str, operator_public, *, report_digest: str | None = None, now: datetime | None = None) -> Certificate:
    """Check a certificate's signature, its dates and (when given) the report it certifies.

    Raises:
        ConformanceError: saying which check failed.
    """
    try:
        _, claims = signing.verify_attached(jws, operator_public, TYP)
    except SignatureRejected as exc:
        raise ConformanceError(f"the certificate is not valid: {exc}") from None
    for name in ("iat", "exp"):
        if type(claims.get(name)) is not int:
            raise ConformanceError(f"the certificate has no {name} in integer seconds")
    if report_digest is not None and claims.get("report") != report_digest:
        raise ConformanceError("the report given is not the one this certificate was issued for (digest differs)")
    moment = int((now or datetime.now(UTC)).timestamp())
    if claims["iat"] > moment + 300:
        raise ConformanceError("the certificate is dated in the future; check the issuer's clock")
    return Certificate(claims, expired=moment >= claims["exp"])
