"""`sgx broker dev-server` stopped by SIGTERM stops the RabbitMQ node it started and that node's epmd."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SGX = str(Path(sys.executable).parent / "sgx")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_stops_the_node_and_its_epmd(tmp_path):
    base = tmp_path / "rabbit"
    process = subprocess.Popen([SGX, "broker", "dev-server", "--dir", str(base)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # printed once the node answers
        assert "RabbitMQ running" in line, process.stderr.read()[-800:]
        ports = json.loads((base / "node.json").read_text())
        assert _listening(ports["port"]) and _listening(ports["epmd_port"])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (_listening(ports["port"]) or _listening(ports["epmd_port"])):
        time.sleep(0.5)
    assert not _listening(ports["port"]) and not _listening(ports["epmd_port"])
