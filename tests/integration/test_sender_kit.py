"""The sender kit on a real RabbitMQ: the project's outbox (the reference sender) passes every test through the
CLI with its reports and a certificate; each deliberately broken sender fails exactly the tests meant to catch it."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from broker.keys import SigningKey
from conformance.exchange import PlayedExchange
from conformance.kits import KITS
from conformance.kits.sender import SenderContext, senders_of
from conformance.model import Result, run_suite
from sgx.cli import cli
from tests.integration.certified_runs import run_certified

PY = sys.executable


@pytest.fixture
def sut_key(tmp_path):
    key = SigningKey.generate("sender-key-1")
    key.save(tmp_path / "sut.key")
    return tmp_path / "sut.key"


def test_the_projects_outbox_passes_every_test_through_the_cli_with_a_certificate(rabbit, tmp_path, sut_key):
    send = f"{PY} -m conformance.reference.sender send {{scenario}} {{config}} --key {sut_key}"
    run_certified(tmp_path, "sender", ["--sut-send", send, "--sut-key", str(sut_key.with_name("sut.pub.jwk")),
                                       "--rabbit-dir", str(rabbit.base), "--system", "sgx outbox",
                                       "--system-version", "0.1"])


# Each broken sender and exactly the tests that must catch it.
BROKEN = {
    "new-id-on-resend": {"SND-02"},
    "changes-content-on-resend": {"SND-02"},
    "wrong-kid": {"SND-01"},
    "invalid-message": {"STD-02"},
    "ignores-rejection": {"SND-04"},
    "resends-after-acceptance": {"SND-03"},
    # It says "sent" for the scenario whose publishes the broker refused: nothing of that scenario arrives.
    "gives-up-on-refused-publish": {"SND-05", "SND-06", "SCN-CON-01"},
}


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_each_broken_sender_fails_exactly_its_tests(rabbit, tmp_path, sut_key, fault):
    first, *others = senders_of(None)
    send = f"{PY} -m tests.integration.broken_senders send {{scenario}} {{config}} --key {sut_key} --fault {fault}"
    with PlayedExchange(tmp_path / "exchange", first, sut_key.with_name("sut.pub.jwk"), [], node=rabbit,
                        also_as=tuple(others)) as exchange:
        context = SenderContext(exchange, send)
        try:
            report = run_suite(KITS["sender"].build(), context)
        finally:
            context.close()
    assert {r.test.id for r in report.runs if r.outcome.result in (Result.FAIL, Result.ERROR)} == BROKEN[fault]


def test_a_scenario_not_selected_skips_the_tests_that_need_it(rabbit, tmp_path, sut_key):
    send = f"{PY} -m conformance.reference.sender send {{scenario}} {{config}} --key {sut_key}"
    with PlayedExchange(tmp_path / "exchange", "provider-example-care", sut_key.with_name("sut.pub.jwk"), [],
                        node=rabbit) as exchange:
        context = SenderContext(exchange, send, selected={"SCN-ALG-01"})
        try:
            report = run_suite(KITS["sender"].build(), context)
        finally:
            context.close()
    results = {r.test.id: r.outcome.result for r in report.runs}
    assert results["SCN-ALG-01"] is Result.PASS and results["SND-01"] is Result.PASS
    assert {results[t] for t in ("SND-02", "SND-04", "SND-05", "SCN-PLC-01")} == {Result.SKIP}
    assert report.passed


def test_the_sender_kit_refuses_what_it_cannot_use_before_starting_a_broker(sut_key):
    runner = CliRunner()
    public = str(sut_key.with_name("sut.pub.jwk"))
    missing = runner.invoke(cli, ["conformance", "run", "--kit", "sender", "--sut-key", public])
    assert missing.exit_code == 2 and "--sut-send" in missing.output
    unknown = runner.invoke(cli, ["conformance", "run", "--kit", "sender", "--sut-key", public, "--sut-send",
                                  "x {scenario}", "--scenario", "SCN-NOPE-01"])
    assert unknown.exit_code == 2 and "unknown scenario(s) SCN-NOPE-01" in unknown.output
    deadline = runner.invoke(cli, ["conformance", "run", "--kit", "receiver", "--sut-key", public, "--sut-run",
                                   "x {config}", "--ack-deadline", "0"])
    assert deadline.exit_code == 2 and "--ack-deadline" in deadline.output
