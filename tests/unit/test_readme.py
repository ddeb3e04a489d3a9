"""The README's steps work as written, on a fresh home folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _block(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(heading):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_running_the_exchange_works_as_written(tmp_path):
    script = _block("## Running the exchange").replace(".venv/bin/sgx", str(Path(sys.executable).parent / "sgx"))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "received 1 message(s)" in done.stdout
    assert "placement-started" in done.stdout and "verified" in done.stdout
    assert "intact" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_key_files_are_kept_out_of_git(tmp_path):
    for path in ("ex/keys/la-886-1.key", "anywhere/keys/router-1.pem", "operator.key"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, path
    assert subprocess.run(["git", "check-ignore", "-q", "broker/keys.py"], cwd=ROOT).returncode == 1


def test_the_oversight_replay_works_as_written(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(\$sgx oversight replay .*?)```", text, re.S).group(1)
    script = f"sgx={Path(sys.executable).parent / 'sgx'}\n{block}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "escalat" in done.stdout.lower() and "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / "hesley.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
