"""Child processes of the benchmark: started pinned to a core, inheriting the raised descriptor limit, always stopped.

Every process is started in its own session and recorded in a registry; :func:`stop_all` (also run at exit and on
SIGTERM/SIGINT) ends each one by its own process-group id, first with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import atexit
import os
import queue
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

CLK_TCK = os.sysconf("SC_CLK_TCK")
_RUNNING: list[ManagedProcess] = []


def nofile_limits() -> tuple[int, int]:
    """The (soft, hard) RLIMIT_NOFILE of this process after raising soft to hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def pin_prefix(core: int | None) -> list[str]:
    """``taskset -c <core>`` when pinning is possible (taskset present, the core exists), else nothing."""
    if core is None or shutil.which("taskset") is None or core >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(core)]


class ManagedProcess:
    """A started child: its Popen, an optional queue of stdout lines, CPU/RSS readings from /proc."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        core: int | None = None,
        capture_stdout: bool = False,
    ) -> None:
        self.name = name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [*pin_prefix(core), *argv],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=self._log,
            start_new_session=True,  # its own process group, so stop() can end it and its children by id
        )  # the descriptor limit is inherited: run.py raised this process's soft limit to the hard one
        _RUNNING.append(self)
        if capture_stdout:
            threading.Thread(target=self._pump, daemon=True, name=f"{name}-stdout").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        """Copy stdout lines into the queue (and the log); None marks the end of the stream."""
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._log.write(raw)
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        """Write one command line to the child's stdin (ignored once the child has gone)."""
        if self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _times(self) -> tuple[float, float] | None:
        """(user, system) CPU seconds used so far (fields 14 and 15 of /proc/<pid>/stat), or None once it is gone."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds used so far, or None once it is gone."""
        times = self._times()
        return None if times is None else times[0] + times[1]

    def system_seconds(self) -> float | None:
        """The system (kernel) part of :meth:`cpu_seconds`, or None once it is gone."""
        times = self._times()
        return None if times is None else times[1]

    def rss_bytes(self) -> int | None:
        """VmRSS of the process (from /proc/<pid>/status), or None once it is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=grace)
        else:
            # the leader exited; make sure nothing it started lingers in its group
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self._log.close()
        if self in _RUNNING:
            _RUNNING.remove(self)
        return self.proc.returncode


def stop_all() -> None:
    """Stop every process this module started and that is still recorded."""
    for proc in list(reversed(_RUNNING)):
        proc.stop(grace=3.0)


def _on_signal(signum: int, _frame: object) -> None:
    stop_all()
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Stop children at interpreter exit and on SIGTERM/SIGINT (call once from the main thread)."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass; returns its last truth value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
