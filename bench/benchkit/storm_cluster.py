"""The storm's cluster: N server processes sharing one redis-server, each with default settings but for what must differ.

realtime_sio nodes get only ``REDIS_URL``, ``PORT``, ``JWT_SECRET`` and ``API_KEY`` (``HOST`` is set to its default,
127.0.0.1); the Node peer gets the same plus ``PEER_REDIS_ADAPTER=1`` (socket.io's Redis adapter). Node ids are read
from each realtime_sio node's ``cluster_node`` log line, and ``cluster_node_reaped`` lines tell which nodes a live
node declared dead.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .procs import ManagedProcess, wait_for
from .servers import (
    BENCH_API_KEY,
    BENCH_JWT_SECRET,
    NODE_PEER,
    PEER_DIR,
    REALTIME_SIO,
    REPO,
    ServerStartError,
    free_port,
    http_get_json,
)

# What each server kind gets besides the inherited environment (REALTIME_SIO_* variables are removed from it).
DIFFERING_SETTINGS: Mapping[str, tuple[str, ...]] = {
    REALTIME_SIO: ("REALTIME_SIO_REDIS_URL", "REALTIME_SIO_PORT", "REALTIME_SIO_JWT_SECRET", "REALTIME_SIO_API_KEY"),
    NODE_PEER: ("REALTIME_SIO_REDIS_URL", "REALTIME_SIO_PORT", "REALTIME_SIO_JWT_SECRET", "REALTIME_SIO_API_KEY",
                "PEER_REDIS_ADAPTER=1"),
}


def _answers(url: str, path: str) -> bool:
    try:
        http_get_json(url + path, timeout=1.0)
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return True


@dataclass
class Node:
    """One started server process of the cluster."""

    index: int
    kind: str
    proc: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_events(self, name: str) -> list[dict[str, object]]:
        """The JSON log lines of this node whose ``event`` is ``name`` (realtime_sio logs JSON when not on a tty)."""
        out: list[dict[str, object]] = []
        try:
            with open(self.proc.log_path, "rb") as log:
                for raw in log:
                    if name.encode() not in raw:
                        continue
                    try:
                        doc = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(doc, dict) and doc.get("event") == name:
                        out.append(doc)
        except OSError:
            pass
        return out

    def problem_counts(self) -> dict[str, int]:
        """Log events at level warning or above, by event name (e.g. event_loop_stalled, cluster_node_reaped)."""
        counts: dict[str, int] = {}
        try:
            with open(self.proc.log_path, "rb") as log:
                for raw in log:
                    if b'"level": "warning"' not in raw and b'"level": "error"' not in raw and b'"level": "critical"' not in raw:
                        continue
                    try:
                        name = str(json.loads(raw).get("event"))
                    except (ValueError, AttributeError):
                        continue
                    counts[name] = counts.get(name, 0) + 1
        except OSError:
            pass
        return counts

    def node_id(self) -> str | None:
        """The cluster node id this realtime_sio node announced at start (None for the peer)."""
        found = self.log_events("cluster_node")
        value = found[0].get("node") if found else None
        return str(value) if value is not None else None


def start_node(kind: str, index: int, *, python: str, node_bin: str, redis_url: str, base_env: Mapping[str, str],
               logs: Path, source: Path = REPO, timeout: float = 60.0) -> Node:
    """Start node ``index`` of ``kind`` on a free port; waits for /ready (realtime_sio) or /health (peer).
    ``source`` is the folder realtime_sio is imported from (another checkout, to compare versions)."""
    port = free_port()
    env = {
        **base_env,
        "REALTIME_SIO_HOST": "127.0.0.1",  # the default, set so a caller's environment cannot move it
        "REALTIME_SIO_PORT": str(port),
        "REALTIME_SIO_REDIS_URL": redis_url,
        "REALTIME_SIO_JWT_SECRET": BENCH_JWT_SECRET,
        "REALTIME_SIO_API_KEY": BENCH_API_KEY,
    }
    if kind == REALTIME_SIO:
        env["PYTHONPATH"] = str(source)
        argv: tuple[str, ...] = (python, "-m", "realtime_sio", "serve")
        cwd, probe = source, "/ready"
    else:
        env["PEER_REDIS_ADAPTER"] = "1"
        argv, cwd, probe = (node_bin, "server.js"), PEER_DIR, "/health"
    proc = ManagedProcess(f"{kind}-{index}", argv, env=env, cwd=cwd, log_path=logs / f"{kind}-node{index}.log")
    node = Node(index, kind, proc, port)
    if not wait_for(lambda: _answers(node.url, probe) or not proc.alive(), timeout, step=0.1) or not proc.alive():
        proc.stop()
        tail = proc.log_path.read_text(errors="replace")[-1500:] if proc.log_path.exists() else ""
        raise ServerStartError(f"{kind} node {index} was not ready on port {port} within {timeout}s:\n{tail}")
    return node


# The series read from each surviving node's /metrics at the end of a run (summed over the nodes).
SCRAPED = ("realtime_sio_redis_pool_wait_seconds_count", "realtime_sio_redis_pool_wait_seconds_sum",
           "realtime_sio_redis_pool_exhausted_total", "realtime_sio_admission_refused_total",
           "realtime_sio_recoveries_total", "realtime_sio_node_heartbeats_total", "realtime_sio_event_loop_lag_seconds_sum",
           "realtime_sio_disconnects_total", "realtime_sio_slow_consumer_disconnects_total")


def scrape(nodes: list[Node]) -> dict[str, float]:
    """``series{labels}`` → value summed over the live realtime_sio nodes, for the :data:`SCRAPED` names."""
    out: dict[str, float] = {}
    for node in nodes:
        if not node.proc.alive():
            continue
        try:
            with urllib.request.urlopen(node.url + "/metrics", timeout=5.0) as resp:
                text = resp.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError):
            continue
        for line in text.splitlines():
            if not line.startswith(SCRAPED):
                continue
            series, _, value = line.rpartition(" ")
            try:
                out[series] = out.get(series, 0.0) + float(value)
            except ValueError:
                continue
    return out


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def reaped_ids(nodes: list[Node]) -> list[str]:
    """Node ids named by any node's ``cluster_node_reaped`` log line (each reap is logged once, by the reaper)."""
    return [str(doc.get("node")) for node in nodes for doc in node.log_events("cluster_node_reaped")]
