"""The servers under test — realtime_sio and the Node socket.io peer — started the same way on a free loopback port."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .procs import ManagedProcess, wait_for

REPO = Path(__file__).resolve().parents[2]
PEER_DIR = REPO / "bench" / "peers" / "node-socketio"

# Credentials used only between the runner, its servers and its load generator on loopback.
BENCH_API_KEY = "bench-api-key-0123456789"
BENCH_JWT_SECRET = "bench-jwt-secret-0123456789abcdef"

REALTIME_SIO = "realtime_sio"
NODE_PEER = "node-peer"
SERVER_NAMES: tuple[str, ...] = (REALTIME_SIO, NODE_PEER)


class ServerStartError(RuntimeError):
    """The server did not answer /health before its deadline (the message quotes its log tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server kind: argv and extra environment; the port and credentials are added per start."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


def realtime_sio_spec(python: str, extra_env: Mapping[str, str] | None = None, source: Path = REPO) -> ServerSpec:
    """realtime_sio from ``source`` (default this checkout; ``PYTHONPATH`` and working folder), run by ``python``,
    with default settings (log level included: per-connection lines are debug, so the default info level is quiet)."""
    env = {"PYTHONPATH": str(source), **(extra_env or {})}
    return ServerSpec(REALTIME_SIO, (python, "-m", "realtime_sio", "serve"), source, env)


def node_peer_spec(node: str = "node", extra_env: Mapping[str, str] | None = None) -> ServerSpec:
    """The Node socket.io 4 reference peer (``bench/peers/node-socketio/server.js``)."""
    return ServerSpec(NODE_PEER, (node, "server.js"), PEER_DIR, dict(extra_env or {}))


def http_get_json(url: str, timeout: float = 2.0) -> object:
    """GET ``url`` and decode its JSON body (raises on a non-2xx answer or a transport error).

    An https URL is the bench's own loopback server with the bench CA's leaf: the health probe does not verify it
    (the load generator does).
    """
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
        return json.loads(resp.read() or b"null")


class RunningServer:
    """A started server: its URL, process (for RSS/CPU) and how to stop it."""

    def __init__(self, spec: ServerSpec, proc: ManagedProcess, port: int) -> None:
        self.spec = spec
        self.proc = proc
        self.port = port
        scheme = "https" if spec.env.get("REALTIME_SIO_TLS_CERT_FILE") else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"

    def healthy(self) -> bool:
        try:
            http_get_json(self.url + "/health", timeout=1.0)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return True

    def stop(self) -> None:
        self.proc.stop()


def start_server(
    spec: ServerSpec,
    *,
    log_path: Path,
    core: int | None,
    redis_url: str | None = None,
    timeout: float = 30.0,
    base_env: Mapping[str, str],
) -> RunningServer:
    """Start ``spec`` on a free port with the bench credentials; waits for ``GET /health`` or raises."""
    port = free_port()
    env = {
        **base_env,
        **spec.env,
        "REALTIME_SIO_HOST": "127.0.0.1",
        "REALTIME_SIO_PORT": str(port),
        "REALTIME_SIO_API_KEY": BENCH_API_KEY,
        "REALTIME_SIO_JWT_SECRET": BENCH_JWT_SECRET,
    }
    if redis_url:
        env["REALTIME_SIO_REDIS_URL"] = redis_url
    else:
        env.pop("REALTIME_SIO_REDIS_URL", None)
    proc = ManagedProcess(spec.name, spec.argv, env=env, cwd=spec.cwd, log_path=log_path, core=core)
    server = RunningServer(spec, proc, port)
    if not wait_for(lambda: server.healthy() or not proc.alive(), timeout, step=0.1) or not proc.alive():
        proc.stop()
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        raise ServerStartError(f"{spec.name} did not become healthy on port {port} within {timeout}s:\n{tail}")
    return server
