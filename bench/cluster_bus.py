"""Server CPU per cluster event on each node: the publishing node, a node with subscribers, a node without (issue 14).

    .venv/bin/python bench/cluster_bus.py [--posts 100] [--clients 300] [--source DIR ...]

One redis-server and 3 realtime_sio nodes with default settings (loopback). Node 1 gets ``--clients`` Socket.IO
clients (python-socketio, WebSocket), each subscribed to one of 100 public rooms (3 per room by default, as in the
storm's broadcast: 20 clients per room over 7 nodes). ``--posts`` POSTs of 100 channels each go to node 0; every event
reaches every node through Redis. Printed: each node's CPU time per event (from /proc, the node's idle CPU rate
subtracted), and whether every client got every event. ``--source`` runs realtime_sio from other trees too (e.g. a
``git worktree`` of an older commit), one after the other, for a before/after in one run. No reference peer: the
storm (``bench/storm.py``) compares the cluster with Node socket.io + redis-adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import socketio

REPO = Path(__file__).resolve().parents[1]
API_KEY = "bench-api-key-0123456789"
ROOMS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_http(url: str, deadline: float) -> None:
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready")


def start(source: Path) -> tuple[subprocess.Popen[bytes], list[subprocess.Popen[bytes]], list[str]]:
    """redis-server and 3 nodes of the realtime_sio in ``source`` (default settings but the cluster's)."""
    redis_port = free_port()
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    nodes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for _ in range(3):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
        env.update(
            PYTHONPATH=str(source),
            REALTIME_SIO_PORT=str(port),
            REALTIME_SIO_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            REALTIME_SIO_API_KEY=API_KEY,
        )
        command = [sys.executable, "-m", "realtime_sio", "serve"]
        nodes.append(subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{port}")
    return redis, nodes, urls


async def measure(pids: list[int], urls: list[str], posts: int, clients: int) -> dict[str, object]:
    """CPU per event of each node while node 0 publishes and node 1's clients receive."""
    for url in urls:
        await wait_http(url, time.monotonic() + 30)
    got = [0]

    def count(*_: object) -> None:
        got[0] += 1

    socks: list[socketio.AsyncClient] = []
    try:
        for i in range(clients):
            client = socketio.AsyncClient()
            client.on("bcast", count)
            await client.connect(urls[1], transports=["websocket"], wait_timeout=10)
            await client.call("subscribe", {"channel": f"room.{i % ROOMS}"}, timeout=10)
            socks.append(client)
        rooms = [f"room.{k}" for k in range(ROOMS)]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            await http.post(f"{urls[0]}/api/v1/events", json={"channels": rooms, "event": "warm", "data": {}})
            await asyncio.sleep(1)
            before = [cpu_seconds(pid) for pid in pids]
            started = time.monotonic()
            for i in range(posts):
                async with http.post(f"{urls[0]}/api/v1/events", json={"channels": rooms, "event": "bcast", "data": {"i": i}}) as r:
                    assert r.status == 200, await r.text()
            expected = posts * clients
            deadline = time.monotonic() + 60
            while got[0] < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            after = [cpu_seconds(pid) for pid in pids]
        idle0 = [cpu_seconds(pid) for pid in pids]
        await asyncio.sleep(2)
        idle = [(cpu_seconds(pid) - i0) / 2 for pid, i0 in zip(pids, idle0, strict=True)]
    finally:
        for client in socks:
            await client.disconnect()
    events = posts * ROOMS
    per_event = [((a - b) - rate * elapsed) * 1e6 / events for a, b, rate in zip(after, before, idle, strict=True)]
    names = ("publishing node", "node with subscribers", "node without subscribers")
    return {
        "events": events,
        "delivered": got[0],
        "expected": expected,
        "seconds": round(elapsed, 2),
        "us_cpu_per_event": {name: round(value, 1) for name, value in zip(names, per_event, strict=True)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100, help="POSTs of 100 channels (default 100)")
    parser.add_argument("--clients", type=int, default=300, help="clients on node 1 (default 300)")
    parser.add_argument("--source", action="append", type=Path, help="realtime_sio trees to run (default: this one)")
    args = parser.parse_args()
    for source in args.source or [REPO]:
        redis, nodes, urls = start(source.resolve())
        try:
            result = asyncio.run(measure([n.pid for n in nodes], urls, args.posts, args.clients))
        finally:
            for process in (*nodes, redis):
                process.send_signal(signal.SIGKILL)
                process.wait(10)
        print(json.dumps({"source": str(source), **result}), flush=True)


if __name__ == "__main__":
    main()
