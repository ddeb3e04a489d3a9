"""A kit run through `sgx conformance run` with a certificate, and the checks every such run must pass."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sgx.cli import cli


def run_certified(tmp_path: Path, kit: str, options: list[str]) -> None:
    """Run `kit` with `options`, certify the run with a fresh operator key, and check that every test passed, the
    reports were written, and the certificate verifies against the operator's key and the report."""
    reports, operator = tmp_path / "reports", tmp_path / "operator.key"
    runner = CliRunner()
    assert runner.invoke(cli, ["conformance", "keygen", "--out", str(operator)]).exit_code == 0
    result = runner.invoke(cli, ["conformance", "run", "--kit", kit, *options, "--report-dir", str(reports),
                                 "--certify-key", str(operator)])
    assert result.exit_code == 0, result.output
    report = json.loads((reports / "report.json").read_bytes())
    assert report["kit"] == kit and report["passed"]
    assert {t["result"] for t in report["tests"]} == {"pass"}
    assert (reports / "report.xml").exists() and (reports / "report.html").exists()
    verified = runner.invoke(cli, ["conformance", "verify", str(reports / "certificate.jws"), "--operator-key",
                                   str(operator.with_name("operator.pub.jwk")), "--report",
                                   str(reports / "report.json")])
    assert verified.exit_code == 0, verified.output
    assert f"kit {kit}" in verified.output
