"""The system under test as a process: started from the command the vendor configures, watched, stopped.

Every wait has a deadline: a system that hangs is killed (its whole process group) and what it wrote last is kept
as evidence; a system that crashes is seen as exited with its code. The kit never uses a shell: the command is
split like a shell would (`shlex`), and `{config}` (and any other named field) is replaced inside each word.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from standard.errors import ConformanceError

STOP_SECONDS = 5.0  # how long a system has to stop after SIGTERM before it is killed
TAIL_LINES = 5


def command_of(template: str, option: str, **fields: str) -> list[str]:
    """The argument list of a vendor's command template, with `{name}` fields filled in.

    Raises:
        ConformanceError: the template is empty, does not split, or names a field the kit does not give.
    """
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise ConformanceError(f"{option}: the command does not split into words ({exc})") from None
    if not words:
        raise ConformanceError(f"{option}: give the command that runs your system, e.g. \"mysystem run {{config}}\"")
    try:
        return [w.format(**fields) for w in words]
    except (KeyError, IndexError, ValueError) as exc:
        raise ConformanceError(f"{option}: the command names a field the kit does not fill ({exc}); the fields are "
                               f"{', '.join('{' + f + '}' for f in fields)}") from None


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines a process wrote (for evidence), each cut short."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line[:200] for line in text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Finished:
    """What a one-shot command did: its exit code (None when it was killed at its deadline) and its output."""

    code: int | None
    stdout: str
    stderr_tail: str

    @property
    def timed_out(self) -> bool:
        return self.code is None

    def describe(self) -> str:
        said = f"; it said: {self.stderr_tail}" if self.stderr_tail else ""
        return ("it did not finish within its deadline and was killed" if self.timed_out
                else f"it exited with code {self.code}") + said


class Process:
    """A long-running system (a receiver): started in its own process group, its output in files of `logs`."""

    def __init__(self, argv: list[str], logs: Path, name: str):
        self.argv, self.logs, self.name = argv, logs, name
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def stderr_file(self) -> Path:
        return self.logs / f"{self.name}-{self.starts}.err"

    def start(self) -> None:
        self.starts += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.logs / f"{self.name}-{self.starts}.out", "wb") as out, \
                    open(self.stderr_file, "wb") as err:
                self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
        except OSError as exc:
            raise ConformanceError(f"cannot start the system under test ({self.argv[0]}): {exc.strerror}") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_evidence(self) -> str:
        """Why the process is not running, for a failed test."""
        if self.proc is None:
            return "the system was never started"
        code = self.proc.poll()
        if code is None:
            return "the system is running"
        said = tail(self.stderr_file)
        return f"the system exited with code {code}" + (f"; it said: {said}" if said else "")

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within STOP_SECONDS."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        # Anything else the system left in its group goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def run_once(argv: list[str], *, timeout: float, logs: Path, name: str, max_output: int = 1 << 20) -> Finished:
    """Run a command to its end or its deadline (then its process group is killed); stdout is kept up to
    `max_output` bytes (a flood is cut, not buffered whole)."""
    logs.mkdir(parents=True, exist_ok=True)
    out_file, err_file = logs / f"{name}.out", logs / f"{name}.err"
    try:
        with open(out_file, "wb") as out, open(err_file, "wb") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                code: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_SECONDS)
                code = None
    except OSError as exc:
        raise ConformanceError(f"cannot run {argv[0]}: {exc.strerror}") from None
    with open(out_file, "rb") as fh:
        stdout = fh.read(max_output).decode("utf-8", errors="replace")
    return Finished(code, stdout, tail(err_file))


def wait_until(condition, *, timeout: float, step: float = 0.05) -> bool:
    """Poll `condition` until it is true or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
