"""A child process that is started, health-checked and always stopped, with its group.

Each child gets its own process group (so helpers it spawns, like Triton's Python stubs,
are stopped with it) and is told by the kernel to die when its parent dies, so that
nothing outlives `wxstream up` or a test run, even after a kill -9.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Sequence

__all__ = ("ManagedProcess", "ComponentError", "free_port", "tcp_ready", "http_ready")

_PR_SET_PDEATHSIG = 1


class ComponentError(RuntimeError):
    """A component did not start or died; the message ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on `port` on `host` (with SO_REUSEPORT or not). Closed
    connections of an earlier server (TIME_WAIT) do not count, as for the servers
    themselves, which bind with SO_REUSEADDR."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    return probe


def http_ready(url: str) -> Callable[[], bool]:
    """A probe that is true once `url` answers 200."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    return probe


def _die_with_parent() -> None:
    os.setsid()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# The first line of a run's log that reads like the cause of a failure.
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|FATAL|Traceback|[A-Za-z]+(Error|Exception))\b|^E\d{4} ")


class ManagedProcess:
    """One supervised child; its output goes to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # where this run's output begins in the (appended) log

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent,
            )
        return self

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        """Poll `probe` until true; fail early and clearly if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise ComponentError(f"{self.name} exited with rc={self.returncode()} while starting{self.log_tail()}")
            if probe() and self.alive:
                return
            time.sleep(0.1)
        raise ComponentError(f"{self.name} not ready after {timeout:.0f}s{self.log_tail()}")

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(pgid, signal.SIGKILL)
        self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the process alone (crash tests), leaving cleanup of the group to `stop`."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        """This run's first error line (the cause, which shutdown noise often follows)
        and its last `lines` lines, for an error message."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        run = text.rstrip().splitlines()
        first = next((line for line in run if _ERROR_LINE.search(line)), None)
        cause = f"\n--- first error in {self.log_path} ---\n{first.strip()}" if first else ""
        tail = "\n".join(run[-lines:])
        return f"{cause}\n--- last lines of {self.log_path} ---\n{tail}" if tail else ""


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
