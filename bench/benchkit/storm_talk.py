"""Talking to the storm's long-lived Node processes: write a command line, wait (with a deadline) for a named event."""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .loadgen import LOADGEN_DIR, LoadgenError, loadgen_argv
from .procs import ManagedProcess

Event = dict[str, Any]


class Talker:
    """A load-generator process in command mode (``storm`` or ``storm-publisher`` scenario of bench/loadgen)."""

    def __init__(self, name: str, scenario: str, options: Mapping[str, object], *, log_path: Path, node: str,
                 max_seconds: float, heap_mb: int = 4096) -> None:
        opts = {**options, "max_seconds": int(max_seconds)}
        self.name = name
        argv = loadgen_argv(scenario, opts, node=node, heap_mb=heap_mb)
        # LOADGEN_NODE_FLAGS go on the load generators' node command line (not the servers'), e.g. "--cpu-prof
        # --cpu-prof-dir=/tmp/prof" to see where their CPU goes (a profile is written when the process exits)
        argv[1:1] = os.environ.get("LOADGEN_NODE_FLAGS", "").split()
        self.proc = ManagedProcess(name, argv, env={},
                                   cwd=LOADGEN_DIR, log_path=log_path,
                                   capture_stdout=True)

    def expect(self, event: str, timeout: float) -> Event:
        """The next event named ``event`` (others are skipped); raises LoadgenError on a result error, exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LoadgenError(f"{self.name}: no {event!r} within {timeout:.0f}s; see {self.proc.log_path}")
            try:
                line = self.proc.lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise LoadgenError(f"{self.name} exited while waiting for {event!r}; see {self.proc.log_path}")
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("event") == "result" and "error" in doc:
                raise LoadgenError(f"{self.name}: {str(doc['error'])[:800]}")
            if doc.get("event") == event:
                return dict(doc)

    def ask(self, command: str, event: str, timeout: float = 30.0) -> Event:
        self.proc.send(command)
        return self.expect(event, timeout)

    def stop(self) -> None:
        self.proc.stop(grace=5.0)


def ask_all(talkers: Sequence[Talker], command: str, event: str, timeout: float = 30.0) -> list[Event]:
    """Send ``command`` to every talker first, then collect each one's answer (they work in parallel)."""
    for t in talkers:
        t.proc.send(command)
    deadline = time.monotonic() + timeout
    return [t.expect(event, max(0.1, deadline - time.monotonic())) for t in talkers]
