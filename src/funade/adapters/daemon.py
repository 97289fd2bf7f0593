"""A background program funade starts and stops by pid file: the registry, Prometheus.

Each runs in its own session (a terminal's Ctrl-C does not reach it), logs to a file,
counts as started only once its own readiness check passes, and is stopped with SIGTERM,
then SIGKILL after a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["Daemon", "DaemonError"]


class DaemonError(Exception):
    """The program exited while starting, or did not become ready in time."""


class Daemon:
    """One program, its pid file and its log."""

    def __init__(self, what: str, pid_file: Path, log: Path) -> None:
        self.what = what
        self.pid_file = pid_file
        self.log = log

    def pid(self) -> int | None:
        """The pid when the program runs, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def start(self, argv: Sequence[str], ready: Callable[[], bool], timeout: float) -> int:
        """Start ``argv`` and wait until ``ready()``; returns the pid.

        Raises:
            DaemonError: it exited first (with the end of its log), or was not ready in time
                (it is then stopped).
        """
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DaemonError(f"{self.what} exited with code {process.returncode}:\n{self.log_tail()}")
            if ready():
                return process.pid
            time.sleep(0.1)
        self.stop()
        raise DaemonError(f"{self.what} was not ready within {timeout:g}s; see {self.log}")

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True when it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
