"""Run one load-generator scenario (``bench/loadgen/main.js``) and follow its JSON-line protocol.

The runner reacts to the load generator's events through callbacks: ``on_event(event, proc)`` may read the
server's RSS/CPU and answer with a command (``"next"``) that is written to the load generator's stdin.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .procs import ManagedProcess

REPO = Path(__file__).resolve().parents[2]
LOADGEN_DIR = REPO / "bench" / "loadgen"

Event = dict[str, Any]
OnEvent = Callable[[Event, ManagedProcess], str | None]


class LoadgenError(RuntimeError):
    """The load generator failed, timed out or produced no result."""


def loadgen_argv(scenario: str, options: Mapping[str, object], node: str = "node", heap_mb: int = 4096) -> list[str]:
    """``node main.js <scenario> --opt value ...``; booleans become flags, lists comma-joined, None skipped."""
    argv = [node, f"--max-old-space-size={heap_mb}", str(LOADGEN_DIR / "main.js"), scenario]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def run_loadgen(
    scenario: str,
    options: Mapping[str, object],
    *,
    log_path: Path,
    core: int | None,
    timeout: float,
    on_event: OnEvent | None = None,
    node: str = "node",
    env: Mapping[str, str] | None = None,
) -> tuple[Event, list[Event]]:
    """Run the scenario to completion; returns (result event, all events). Raises :class:`LoadgenError`."""
    opts = {**options, "max_seconds": int(timeout)}
    proc = ManagedProcess(
        f"loadgen-{scenario}",
        loadgen_argv(scenario, opts, node=node),
        env=dict(env or {}),
        cwd=LOADGEN_DIR,
        log_path=log_path,
        core=core,
        capture_stdout=True,
    )
    events: list[Event] = []
    result: Event | None = None
    deadline = time.monotonic() + timeout + 15  # the load generator stops itself at `timeout`; this is a backstop
    try:
        while result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LoadgenError(f"load generator {scenario} gave no result within {timeout}s; see {log_path}")
            try:
                line = proc.lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            events.append(event)
            if event.get("event") == "result":
                result = event
            elif on_event is not None:
                command = on_event(event, proc)
                if command:
                    proc.send(command)
    finally:
        proc.stop(grace=5.0)
    if result is None:
        raise LoadgenError(f"load generator {scenario} exited without a result; see {log_path}")
    if "error" in result:
        raise LoadgenError(f"load generator {scenario}: {result['error']}")
    return result, events


def base_options(url: str, api_key: str, jwt_secret: str, per_address_limit: int) -> dict[str, object]:
    """Options every scenario shares: target, credentials, source-address spreading."""
    return {"url": url, "api_key": api_key, "jwt_secret": jwt_secret, "per_address_limit": per_address_limit}


def events_named(events: Sequence[Event], name: str) -> list[Event]:
    return [e for e in events if e.get("event") == name]
