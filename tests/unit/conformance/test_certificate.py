"""Conformance certificates: issued only for a passing run, checked offline with the operator's public key,
tied to the report they certify; forged, altered, expired or mismatched ones are refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from broker.keys import SigningKey
from conformance import certificate
from sgx.cli import cli
from standard.errors import ConformanceError
from tests.unit.conformance.test_messages_kit import _no_confidential_label, _produce


def _run(tmp_path, folder, *extra):
    return CliRunner().invoke(cli, ["conformance", "run", "--kit", "messages", "--messages", str(folder),
                                    "--report-dir", str(tmp_path / "reports"), "--quiet", *extra])


@pytest.fixture
def operator(tmp_path):
    result = CliRunner().invoke(cli, ["conformance", "keygen", "--out", str(tmp_path / "op" / "operator.key")])
    assert result.exit_code == 0, result.output
    return tmp_path / "op" / "operator.key", tmp_path / "op" / "operator.pub.jwk"


def _certify(tmp_path, folder, key):
    return _run(tmp_path, folder, "--certify-key", str(key), "--system", "CaseSys", "--system-version", "4.2",
                "--participant", "la-886")


def _verify(cert, public, *extra):
    return CliRunner().invoke(cli, ["conformance", "verify", str(cert), "--operator-key", str(public), *extra])


def test_a_passing_run_gets_a_certificate_anyone_can_check(tmp_path, operator):
    key, public = operator
    result = _certify(tmp_path, _produce(tmp_path / "out"), key)
    assert result.exit_code == 0, result.output
    cert = tmp_path / "reports" / "certificate.jws"
    checked = _verify(cert, public, "--report", str(tmp_path / "reports" / "report.json"))
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("VALID: CaseSys 4.2 run by la-886; kit messages")
    claims = json.loads(base64.urlsafe_b64decode(cert.read_text().split(".")[1] + "=="))
    assert "MSG-001" in claims["requirements"] and claims["tests"]["fail"] == 0
    assert claims["exp"] - claims["iat"] == 365 * 86400


def test_a_failing_run_gets_no_certificate(tmp_path, operator):
    key, _ = operator
    result = _certify(tmp_path, _produce(tmp_path / "out", _no_confidential_label), key)
    assert result.exit_code == 1 and "no certificate" in result.output
    assert not (tmp_path / "reports" / "certificate.jws").exists()


def test_altered_forged_mismatched_and_expired_certificates_are_refused(tmp_path, operator):
    key, public = operator
    _certify(tmp_path, _produce(tmp_path / "out"), key)
    cert = tmp_path / "reports" / "certificate.jws"
    header, payload, signature = cert.read_text().strip().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["system"]["version"] = "5.0"
    altered = tmp_path / "altered.jws"
    altered.write_text(".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="),
                                 signature]))
    assert _verify(altered, public).output.startswith("INVALID")
    other = tmp_path / "other.pub.jwk"
    SigningKey.generate("").save(tmp_path / "other.key")
    assert _verify(cert, other).exit_code == 1
    (tmp_path / "reports" / "report.json").write_text("{}")
    mismatched = _verify(cert, public, "--report", str(tmp_path / "reports" / "report.json"))
    assert mismatched.exit_code == 1 and "digest differs" in mismatched.output


def test_expiry_is_judged_on_the_clock_given(tmp_path):
    from conformance.kits import KITS
    from conformance.kits.messages import MessagesContext
    from conformance.model import run_suite

    report = run_suite(KITS["messages"].build(), MessagesContext(_produce(tmp_path / "out")))
    key = SigningKey.generate("op-1")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    jws = certificate.issue(report, "sha256:x", key, operator="op", system="S", version="1", now=start,
                            valid_for=timedelta(days=30))
    assert not certificate.verify(jws, key.public, now=start + timedelta(days=29)).expired
    assert certificate.verify(jws, key.public, now=start + timedelta(days=30)).expired
    with pytest.raises(ConformanceError, match="positive"):
        certificate.issue(report, "sha256:x", key, operator="op", system="S", version="1", valid_for=timedelta(0))


def test_a_certificate_without_its_system_names_is_a_usage_error(tmp_path, operator):
    key, _ = operator
    result = _run(tmp_path, _produce(tmp_path / "out"), "--certify-key", str(key))
    assert result.exit_code == 2 and "--system" in result.output


def test_a_participants_certified_system_is_recorded_in_the_directory(tmp_path, operator):
    key, public = operator
    runner = CliRunner()
    ex = tmp_path / "ex"
    runner.invoke(cli, ["directory", "init", "--dir", str(ex)])
    _certify(tmp_path, _produce(tmp_path / "out"), key)
    cert = tmp_path / "reports" / "certificate.jws"
    recorded = runner.invoke(cli, ["conformance", "register", "--dir", str(ex), "--participant", "la-886", str(cert),
                                   "--operator-key", str(public)])
    assert recorded.exit_code == 0, recorded.output
    assert runner.invoke(cli, ["directory", "sign", "--dir", str(ex)]).exit_code == 0
    shown = runner.invoke(cli, ["directory", "show", "--dir", str(ex)]).output
    assert "la-886" in shown and "runs CaseSys 4.2: certified (messages kit" in shown
    # A certificate issued for another participant, or one that does not verify, is not recorded.
    other = runner.invoke(cli, ["conformance", "register", "--dir", str(ex), "--participant", "la-371", str(cert),
                                "--operator-key", str(public)])
    assert other.exit_code == 2 and "issued for la-886" in other.output
    SigningKey.generate("").save(tmp_path / "impostor.key")
    forged = runner.invoke(cli, ["conformance", "register", "--dir", str(ex), "--participant", "la-886", str(cert),
                                 "--operator-key", str(tmp_path / "impostor.pub.jwk")])
    assert forged.exit_code == 2 and "not valid" in forged.output


def _claims(cert):
    return json.loads(base64.urlsafe_b64decode(cert.read_text().split(".")[1] + "=="))


def test_a_certificate_claims_only_what_the_run_checked(tmp_path, operator):
    key, _ = operator
    only = tmp_path / "only"
    only.mkdir()
    (only / "SCN-INC-01.json").write_bytes((_produce(tmp_path / "all") / "SCN-INC-01.json").read_bytes())
    result = _run(tmp_path, only, "--scenario", "SCN-INC-01", "--certify-key", str(key), "--system", "IncidentSys",
                  "--system-version", "1")
    assert result.exit_code == 0, result.output
    claimed = set(_claims(tmp_path / "reports" / "certificate.jws")["requirements"])
    assert {"INC-001", "INC-002", "CHD-001"} <= claimed
    assert not claimed & {"ESC-001", "ACK-001", "RPT-001", "RPT-002", "ALG-001", "PLC-006", "CON-001"}


def test_a_failing_run_removes_an_earlier_certificate_from_its_report_folder(tmp_path, operator):
    key, public = operator
    _certify(tmp_path, _produce(tmp_path / "out"), key)
    assert (tmp_path / "reports" / "certificate.jws").exists()
    failing = _certify(tmp_path, _produce(tmp_path / "broken", _no_confidential_label), key)
    assert failing.exit_code == 1
    assert not (tmp_path / "reports" / "certificate.jws").exists()


def test_a_behaviour_is_claimed_only_when_every_test_of_it_passed():
    from conformance.kits import KITS
    from conformance.model import Outcome, Report, TestRun

    suite = KITS["receiver"].build()
    runs = [TestRun(group.id, test, Outcome.skipped("no --sut-stored") if test.id in ("RCV-05", "RCV-11")
                    else Outcome.passed(), 0.0) for group, test in suite.tests()]
    claimed = certificate.proved(Report(suite, runs))
    assert "RCV-002" not in claimed  # held once and before acknowledging: not seen without --sut-stored
    assert {"RCV-001", "RCV-003", "SIG-001", "SIG-002", "ACK-001"} <= claimed
    every = certificate.proved(Report(suite, [TestRun(g.id, t, Outcome.passed(), 0.0) for g, t in suite.tests()]))
    assert "RCV-002" in every
