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
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import socketio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit.procs import ManagedProcess, install_cleanup, stop_all
from benchkit.redis_server import start_redis
from benchkit.servers import (
    BENCH_API_KEY,
    RunningServer,
    realtime_sio_spec,
    start_server,
)

ROOMS = 100


def cpu(proc: ManagedProcess) -> float:
    seconds = proc.cpu_seconds()
    if seconds is None:
        raise RuntimeError(f"{proc.name} exited during the measurement")
    return seconds


async def wait_ready(url: str, deadline: float) -> None:
    """Until ``/ready`` answers 200 (the node's cluster bus has subscribed)."""
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


def start(source: Path, logs: Path) -> list[RunningServer]:
    """redis-server and 3 nodes of the realtime_sio in ``source`` (default settings but the cluster's)."""
    _, redis_url = start_redis(logs / "redis.log", core=None)
    spec = realtime_sio_spec(sys.executable, source=source)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
    return [
        start_server(spec, log_path=logs / f"node{n}.log", core=None, redis_url=redis_url, base_env=base_env)
        for n in range(3)
    ]


async def measure(nodes: list[RunningServer], posts: int, clients: int) -> dict[str, object]:
    """CPU per event of each node while node 0 publishes and node 1's clients receive."""
    urls = [node.url for node in nodes]
    procs = [node.proc for node in nodes]
    for url in urls:
        await wait_ready(url, time.monotonic() + 30)
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
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {BENCH_API_KEY}"}) as http:
            await http.post(f"{urls[0]}/api/v1/events", json={"channels": rooms, "event": "warm", "data": {}})
            await asyncio.sleep(1)
            before = [cpu(p) for p in procs]
            started = time.monotonic()
            for i in range(posts):
                async with http.post(f"{urls[0]}/api/v1/events", json={"channels": rooms, "event": "bcast", "data": {"i": i}}) as r:
                    assert r.status == 200, await r.text()
            expected = posts * clients
            deadline = time.monotonic() + 60
            while got[0] < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            after = [cpu(p) for p in procs]
        idle0 = [cpu(p) for p in procs]
        await asyncio.sleep(2)
        idle = [(cpu(p) - i0) / 2 for p, i0 in zip(procs, idle0, strict=True)]
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
    install_cleanup()
    for source in args.source or [REPO]:
        with tempfile.TemporaryDirectory(prefix="cluster-bus-") as logs:
            try:
                result = asyncio.run(measure(start(source.resolve(), Path(logs)), args.posts, args.clients))
            finally:
                stop_all()
        print(json.dumps({"source": str(source), **result}), flush=True)


if __name__ == "__main__":
    main()
