"""What the figures were measured on: CPU model, cores, memory, kernel, limits, and every component's version."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PY_VERSIONS = (
    "import importlib.metadata as m, json, platform;"
    "names = ['python-socketio', 'python-engineio', 'aiohttp', 'uvloop', 'redis', 'PyJWT'];"
    "out = {'python': platform.python_version()};"
    "out.update({n: (m.version(n) if any(d.metadata['Name'].lower() == n.lower() for d in m.distributions()) else None) for n in names});"
    "print(json.dumps(out))"
)


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    except OSError:
        return ""


def _npm_version(folder: Path, package: str) -> str | None:
    try:
        return str(json.loads((folder / "node_modules" / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def ephemeral_ports() -> tuple[int, int] | None:
    """Linux's range of local ports for outgoing connections (net.ipv4.ip_local_port_range), or None."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def describe(python: str, node: str, nofile: tuple[int, int]) -> dict[str, object]:
    """Machine facts and component versions, JSON-serialisable."""
    try:
        py = json.loads(_run([python, "-c", _PY_VERSIONS]) or "{}")
    except ValueError:
        py = {}
    redis_line = _run(["redis-server", "--version"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "kernel": platform.release(),
        "nofile": list(nofile),
        "ephemeral_ports": list(ephemeral_ports() or ()),
        "python": py.get("python"),
        "python-socketio": py.get("python-socketio"),
        "python-engineio": py.get("python-engineio"),
        "aiohttp": py.get("aiohttp"),
        "uvloop": py.get("uvloop"),
        "redis-py": py.get("redis"),
        "node": _run([node, "--version"]).lstrip("v") or None,
        "socket.io": _npm_version(REPO / "bench" / "peers" / "node-socketio", "socket.io"),
        "redis-adapter": _npm_version(REPO / "bench" / "peers" / "node-socketio", "@socket.io/redis-adapter"),
        "socket.io-client": _npm_version(REPO / "bench" / "loadgen", "socket.io-client"),
        "redis-server": next((w.split("=", 1)[1] for w in redis_line.split() if w.startswith("v=")), None),
        "git": _run(["git", "-C", str(REPO), "describe", "--always", "--dirty"]) or None,
    }
