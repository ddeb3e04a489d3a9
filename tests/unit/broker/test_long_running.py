"""Long-running commands say what they do and stop cleanly on Ctrl-C or SIGTERM, as a service manager stops them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sgx.cli import cli

SGX = str(Path(sys.executable).parent / "sgx")


@pytest.fixture
def exchange(tmp_path):
    root = tmp_path / "ex"
    runner = CliRunner()
    runner.invoke(cli, ["directory", "init", "--dir", str(root)])
    for pid in ("router", "la-371"):
        runner.invoke(cli, ["directory", "keygen", "--dir", str(root), "--participant", pid])
    runner.invoke(cli, ["directory", "sign", "--dir", str(root)])
    return root


def _started(process: subprocess.Popen, words: str, seconds: float = 60) -> str:
    """Read stderr until the start line appears."""
    deadline, seen = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen += line
        if words in line:
            return seen
    raise AssertionError(f"no start line within {seconds} s: {seen[-500:]}")


@pytest.mark.parametrize(("args", "start", "end"), [
    (["broker", "route"], "routing for", "routed 0 message(s)"),
    (["node", "run", "--participant", "la-371"], "receiving for la-371", "received 0 message(s)"),
], ids=["route", "node-run"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_running_command_says_so_and_stops_cleanly_on_a_signal(exchange, args, start, end, sig):
    process = subprocess.Popen([SGX, *args, "--dir", str(exchange)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        _started(process, start)
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err[-500:]
    assert end in out and "Traceback" not in err and "Aborted" not in err


def test_node_run_refuses_a_participant_the_directory_does_not_have(exchange):
    result = CliRunner().invoke(cli, ["node", "run", "--dir", str(exchange), "--participant", "lado-999", "--once"])
    assert result.exit_code == 2 and "not a participant" in result.output
    assert not (exchange / "inbox" / "lado-999.db").exists()
