"""Long-running commands say what they do and stop cleanly on Ctrl-C or SIGTERM, as a service manager stops them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
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


def _progress_line(process: subprocess.Popen, pattern: str, seconds: float = 60) -> re.Match:
    """Read stderr until a progress line matches `pattern` (lines come every 0.2 s; the deadline only guards
    against a hang, it is not what the test measures)."""
    deadline, seen = time.monotonic() + seconds, ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen += line
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r} within {seconds} s: {seen[-800:]}")


def _queue_messages(exchange: Path, tmp_path: Path, count: int) -> None:
    from sgx.demo import placement

    files = []
    for n in range(count):
        files.append(tmp_path / f"message-{n}.json")
        files[-1].write_bytes(orjson.dumps(placement("la-371", n + 1, "SC900001", f"2026-01-0{n + 1}")))
    result = CliRunner().invoke(cli, ["node", "send", "--dir", str(exchange), "--participant", "la-371",
                                      *map(str, files)])
    assert f"sent {count}" in result.output, result.output


def test_route_and_node_run_report_counts_as_they_go(exchange, tmp_path):
    _queue_messages(exchange, tmp_path, 3)  # placements at a setting the directory does not have: refused
    router = subprocess.Popen([SGX, "broker", "route", "--dir", str(exchange), "--progress-every", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = _progress_line(router, r"^routed 3 so far; (\d+) refused; ingress depth (\d+)$")
        assert found.groups() == ("3", "0")
        router.send_signal(signal.SIGTERM)
        router.communicate(timeout=30)
    finally:
        router.kill()
    # The sender's node now takes the three acknowledgements (refusals) the router sent it.
    node = subprocess.Popen([SGX, "node", "run", "--dir", str(exchange), "--participant", "la-371",
                             "--progress-every", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = _progress_line(node, r"^received (\d+) so far; (\d+) refused or handed back; queue depth (\d+)$")
        while found.group(1) != "3":  # the first line may come before the batch is in
            found = _progress_line(node, r"^received (\d+) so far; (\d+) refused or handed back; queue depth (\d+)$")
        assert found.groups() == ("3", "0", "0")
        node.send_signal(signal.SIGTERM)
        out, _ = node.communicate(timeout=30)
    finally:
        node.kill()
    assert "received 3 message(s)" in out


def test_progress_lines_come_at_the_interval_given_and_none_at_zero():
    from broker import progress

    lines: list[str] = []
    two = threading.Event()

    def echo(text: str) -> None:
        lines.append(text)
        if len(lines) >= 2:
            two.set()

    made = iter(range(1, 100))
    with progress.every(0.01, lambda: f"line {next(made)}", echo):
        assert two.wait(30)
    assert lines[:2] == ["line 1", "line 2"]
    with progress.every(0, lambda: pytest.fail("no line at an interval of 0"), echo):
        pass


def test_a_line_that_cannot_be_made_is_skipped_and_the_work_goes_on():
    from broker import progress

    lines: list[str] = []
    later = threading.Event()
    attempts = iter([RuntimeError("broker away"), "after"])

    def line() -> str:
        item = next(attempts, "after")
        if isinstance(item, Exception):
            raise item
        return item

    with progress.every(0.01, line, lambda text: (lines.append(text), later.set())):
        assert later.wait(30)
    assert lines[0] == "after"


def test_the_routing_line_counts_only_what_was_decided_since_it_started(tmp_path):
    from broker import progress
    from broker.audit import AuditLog

    state = tmp_path / "router.db"
    log = AuditLog(state)
    record = {"digest": "d", "sender": "la-371", "event": "e", "recipients": []}
    log.append(message_id="before", decision="accepted", **record)  # from an earlier run: not counted
    line = progress.routing(state, lambda: _Depth(12))
    for n, decision in enumerate(["accepted"] * 1233 + ["rejected"] * 3 + ["duplicate", "not-told"]):
        log.append(message_id=f"m{n}", decision=decision, **record)
    assert line() == "routed 1,237 so far; 3 refused; 1 duplicate(s); ingress depth 12"
    log.append(message_id="later", decision="accepted", **record)
    assert line() == "routed 1,238 so far; 3 refused; 1 duplicate(s); ingress depth 12"


class _Depth:
    def __init__(self, depth: int):
        self.value = depth

    def depth(self, queue: str) -> int:
        return self.value
