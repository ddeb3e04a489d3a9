"""`scripts/test` fails a full run that collects no tests (a suite that vanished, or cannot be collected, must never
read as a pass), while a selection that matches nothing (`scripts/test -k word`) is not an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "scripts" / "pytest-run"


def _run(script: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    # A folder with no tests in it: pytest collects nothing there.
    return subprocess.run(["bash", str(script), "-p", "no:cacheprovider", *args] if args else ["bash", str(script)],
                          cwd=folder, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120)


def test_scripts_test_runs_pytest_through_the_rule():
    assert "scripts/pytest-run" in (ROOT / "scripts" / "test").read_text()


def test_a_full_run_that_collects_nothing_fails(tmp_path):
    result = _run(RUN, tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "a full run collected no tests" in result.stderr


def test_a_selection_that_matches_nothing_passes(tmp_path):
    result = _run(RUN, tmp_path, "-k", "nothing_is_called_this")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no tests were selected" in result.stderr


def test_broken_twin_forgiving_every_empty_run_passes_the_full_run(tmp_path):
    # The rule without its "only for a selection" condition: the full run would pass, which the test above refuses.
    twin = tmp_path / "pytest-run"
    twin.write_text(RUN.read_text().replace('if [ $# -gt 0 ]; then', 'if true; then'))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(twin, empty).returncode == 0
