"""The receiver kit on a real RabbitMQ: the project's node (the reference receiver) passes every test, through the
CLI with its reports and a certificate; each deliberately broken receiver fails exactly the tests meant to catch
it; a system that cannot start is a set-up error, never a hung run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.keys import SigningKey
from conformance.exchange import PlayedExchange
from conformance.kits import KITS
from conformance.kits.receiver import SENDERS, ReceiverContext
from conformance.model import Result, run_suite
from sgx.cli import cli
from tests.integration.certified_runs import run_certified

PY = sys.executable
DEADLINE = 8.0


@pytest.fixture
def sut_key(tmp_path):
    key = SigningKey.generate("receiver-key-1")
    key.save(tmp_path / "sut.key")
    return tmp_path / "sut.key"


def _commands(module: str, key, extra: str = "") -> tuple[str, str]:
    return (f"{PY} -m {module} run {{config}} --key {key} {extra}", f"{PY} -m {module} stored {{config}} {extra}")


def _failing(rabbit, tmp_path, key, module: str, extra: str = "") -> set[str]:
    run, stored = _commands(module, key, extra)
    with PlayedExchange(tmp_path / "exchange", "la-999", key.with_name("sut.pub.jwk"), list(SENDERS),
                        node=rabbit) as exchange:
        context = ReceiverContext(exchange, run, stored, deadline=DEADLINE)
        context.start()
        try:
            report = run_suite(KITS["receiver"].build(), context)
        finally:
            context.close()
    return {r.test.id for r in report.runs if r.outcome.result in (Result.FAIL, Result.ERROR)}


def test_the_projects_node_passes_every_test_through_the_cli_with_a_certificate(rabbit, tmp_path, sut_key):
    run, stored = _commands("conformance.reference.receiver", sut_key)
    run_certified(tmp_path, "receiver", ["--sut-run", run, "--sut-stored", stored, "--sut-key",
                                         str(sut_key.with_name("sut.pub.jwk")), "--participant", "la-999",
                                         "--rabbit-dir", str(rabbit.base), "--ack-deadline", str(DEADLINE),
                                         "--system", "sgx node", "--system-version", "0.1"])


# Each broken receiver and exactly the tests that must catch it.
BROKEN = {
    "skip-verification": {"RCV-06", "RCV-07"},
    "acknowledge-before-storing": {"RCV-11"},
    "apply-duplicates-twice": {"RCV-04", "RCV-05"},
    "never-acknowledge": {"RCV-01", "RCV-02", "RCV-03", "RCV-04", "RCV-08", "RCV-09", "RCV-11"},
    "wrong-kid": {"RCV-02"},
    "invalid-acknowledgement": {"RCV-03"},
    "accept-anything": {"RCV-08"},
    "refuse-out-of-order": {"RCV-09"},
    # It dies at the duplicate: what came after is never answered, and the kit says it died.
    "crash-on-duplicate": {"RCV-08", "RCV-09", "RCV-10", "RCV-11"},
    # 600 messages that are not acknowledgements after its tenth answer: the kit stops reading at its bound.
    "flood-the-ingress": {"RCV-10", "RCV-11"},
}


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_each_broken_receiver_fails_exactly_its_tests(rabbit, tmp_path, sut_key, fault):
    failing = _failing(rabbit, tmp_path, sut_key, "tests.integration.broken_receivers", f"--fault {fault}")
    assert failing == BROKEN[fault]


def test_a_system_that_cannot_start_is_a_set_up_error(rabbit, tmp_path, sut_key):
    result = CliRunner().invoke(cli, ["conformance", "run", "--kit", "receiver", "--sut-run",
                                      f"{tmp_path}/no-such-system run {{config}}", "--sut-key",
                                      str(sut_key.with_name("sut.pub.jwk")), "--rabbit-dir", str(rabbit.base)])
    assert result.exit_code == 2, result.output
    assert "cannot start the system under test" in result.output


def test_the_receiver_kit_needs_its_command_and_key(tmp_path, sut_key):
    runner = CliRunner()
    missing_run = runner.invoke(cli, ["conformance", "run", "--kit", "receiver", "--sut-key",
                                      str(sut_key.with_name("sut.pub.jwk"))])
    assert missing_run.exit_code == 2 and "--sut-run" in missing_run.output
    missing_key = runner.invoke(cli, ["conformance", "run", "--kit", "receiver", "--sut-run", "x {config}"])
    assert missing_key.exit_code == 2 and "--sut-key" in missing_key.output
    bad_field = runner.invoke(cli, ["conformance", "run", "--kit", "receiver", "--sut-run", "x {nope}", "--sut-key",
                                    str(sut_key.with_name("sut.pub.jwk"))])
    assert bad_field.exit_code == 2, bad_field.output


NODE_RECEIVER = Path(__file__).resolve().parents[2] / "examples" / "receiver-node"


def test_the_reference_receiver_in_node_passes_every_test(rabbit, tmp_path, sut_key):
    """A receiver in another language, written from the standard's documents (JOSE and AMQP libraries of its own),
    passes the kit: the kit asks nothing of a system but AMQP 0-9-1, JWS and the standard's JSON."""
    node = shutil.which("node")
    assert node, "install nodejs (scripts/test does, as root)"
    assert (NODE_RECEIVER / "node_modules").is_dir(), "run scripts/test (it installs examples/receiver-node)"
    script = NODE_RECEIVER / "receiver.mjs"
    with PlayedExchange(tmp_path / "exchange", "la-999", sut_key.with_name("sut.pub.jwk"), list(SENDERS),
                        node=rabbit) as exchange:
        context = ReceiverContext(exchange, f"{node} {script} run {{config}} --key {sut_key}",
                                  f"{node} {script} stored {{config}}", deadline=DEADLINE)
        context.start()
        try:
            report = run_suite(KITS["receiver"].build(), context)
        finally:
            context.close()
    assert {r.test.id: r.outcome.result for r in report.runs} == {r.test.id: Result.PASS for r in report.runs}
