"""A private redis-server for the Laravel-path and storm scenarios: free port, loopback only, no persistence."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .procs import ManagedProcess, wait_for
from .servers import free_port

REDIS_BINARY = "/usr/bin/redis-server"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(log_path: Path, core: int | None) -> tuple[ManagedProcess, str]:
    """Start ``redis-server --port <free> --save '' --appendonly no`` bound to 127.0.0.1; returns (process, url)."""
    binary = shutil.which("redis-server") or REDIS_BINARY
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
    proc = ManagedProcess("redis", argv, env={}, cwd=log_path.parent, log_path=log_path, core=core)
    if not wait_for(lambda: _answers_ping(port) or not proc.alive(), 10.0) or not proc.alive():
        proc.stop()
        raise RuntimeError(f"redis-server did not start on port {port}; see {log_path}")
    return proc, f"redis://127.0.0.1:{port}/0"


def used_memory(url: str) -> int | None:
    """``used_memory`` from ``INFO memory`` of the redis-server at ``url`` (redis://127.0.0.1:<port>/0), or None."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
            s.sendall(b"INFO memory\r\n")
            data = b""
            while b"\r\n" not in data or len(data) < int(data.split(b"\r\n", 1)[0][1:] or 0) + 4:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (OSError, ValueError):
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":", 1)[1])
    return None
