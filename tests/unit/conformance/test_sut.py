"""The system under test as a process: its command templates, and deadlines that end a hung system rather than
the run."""

from __future__ import annotations

import signal
import sys

import pytest

from conformance.sut import Process, command_of, run_once, wait_until
from standard.errors import ConformanceError


def test_a_template_is_split_like_a_shell_and_its_fields_filled_inside_words():
    assert command_of('my-system "run now" --config={config}', "--sut-run", config="/tmp/c.json") == [
        "my-system", "run now", "--config=/tmp/c.json"]


@pytest.mark.parametrize("template", ["", "my-system {nope}", 'my-system "unclosed'])
def test_a_template_the_kit_cannot_use_is_refused_naming_the_option(template):
    with pytest.raises(ConformanceError, match="--sut-run"):
        command_of(template, "--sut-run", config="c")


def test_a_command_that_hangs_is_killed_at_its_deadline_with_what_it_said(tmp_path):
    hang = [sys.executable, "-c", "import sys, time; sys.stderr.write('working\\n'); sys.stderr.flush(); "
            "time.sleep(600)"]
    done = run_once(hang, timeout=1.0, logs=tmp_path, name="hang")
    assert done.timed_out and done.code is None
    assert "did not finish within its deadline" in done.describe()


def test_a_command_that_floods_stdout_is_cut_at_the_bound(tmp_path):
    flood = [sys.executable, "-c", "import sys; sys.stdout.write('x' * 3_000_000)"]
    done = run_once(flood, timeout=30, logs=tmp_path, name="flood", max_output=1000)
    assert done.code == 0 and len(done.stdout) == 1000


def test_a_system_that_ignores_sigterm_is_killed_and_a_crash_is_reported_with_its_last_words(tmp_path):
    stubborn = Process([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "
                        "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"], tmp_path, "stubborn")
    stubborn.start()
    assert wait_until(lambda: b"ready" in (tmp_path / "stubborn-1.out").read_bytes(), timeout=30)
    stubborn.stop()
    assert not stubborn.alive()
    assert stubborn.proc.returncode == -signal.SIGKILL  # SIGTERM was ignored; the kit did not wait for ever
    crash = Process([sys.executable, "-c", "import sys; sys.stderr.write('fatal: out of cheese\\n'); sys.exit(3)"],
                    tmp_path, "crash")
    crash.start()
    crash.proc.wait(timeout=30)
    assert crash.exit_evidence() == "the system exited with code 3; it said: fatal: out of cheese"


def test_a_command_that_does_not_exist_is_a_set_up_error(tmp_path):
    with pytest.raises(ConformanceError, match="cannot start the system under test"):
        Process([str(tmp_path / "no-such-system")], tmp_path, "missing").start()
