"""Scale-out benchmark (issue 4): delivery latency on 1 node vs 3 nodes through Redis, and the cost of recovery.

    .venv/bin/python bench/cluster.py [--clients 300] [--rate 200] [--seconds 10] [--replay 2000]

Configurations, measured in one run and printed side by side:
  single  one node, in-memory (no Redis): the reference
  redis1  one node with REALTIME_SIO_REDIS_URL (every event goes through Redis streams + pub/sub)
  redis3  three nodes on one Redis, clients and publishes spread over all three

Latency: the benchmark process publishes through POST /api/v1/events at a fixed rate (round-robin over the nodes),
each event carrying time.perf_counter(); its own socketio.AsyncClient connections record receipt - send on the same
clock. Recovery: one client misses --replay events, reconnects with its last position, and the replay rate is
events / (time from reconnect to the last replayed event). Servers are pinned to core 0, this process to core 1.
Traffic stays on 127.0.0.1; every loop is bounded and every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(10)


def pin(core: str) -> list[str]:
    return ["taskset", "-c", core] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def start_redis(procs: list[subprocess.Popen[bytes]]) -> str:
    port = free_port()
    procs.append(subprocess.Popen([*pin("1"), "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
    wait_port(port)
    return f"redis://127.0.0.1:{port}/0"


def start_node(procs: list[subprocess.Popen[bytes]], redis_url: str | None, log_dir: Path) -> str:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
    env.update(REALTIME_SIO_PORT=str(port), REALTIME_SIO_API_KEY=API_KEY,
               REALTIME_SIO_HISTORY_SIZE="5000", REALTIME_SIO_HISTORY_SECONDS="300")
    if redis_url:
        env["REALTIME_SIO_REDIS_URL"] = redis_url
    with open(log_dir / f"node-{port}.log", "wb") as log:
        procs.append(subprocess.Popen([*pin("0"), sys.executable, "-m", "realtime_sio", "serve"], env=env, stdout=log, stderr=log, cwd=ROOT))
    wait_port(port)
    return f"http://127.0.0.1:{port}"


async def wait_ready(urls: list[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for url in urls:
            for _ in range(400):
                try:
                    if (await http.get(f"{url}/ready")).status == 200:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise TimeoutError(f"{url} never became ready")


async def measure_latency(urls: list[str], clients: int, rooms: int, rate: float, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    expected = 0
    socks: list[socketio.AsyncClient] = []
    for i in range(clients):
        c = socketio.AsyncClient(reconnection=False)

        def on_event(channel: str, data: dict[str, Any], *_: Any) -> None:
            latencies.append(time.perf_counter() - data["t"])

        c.on("B", on_event)
        await c.connect(urls[i % len(urls)], transports=["websocket"], wait_timeout=10)
        await c.call("subscribe", {"channel": f"bench-{i % rooms}"})
        socks.append(c)
    per_room = [sum(1 for i in range(clients) if i % rooms == r) for r in range(rooms)]
    await asyncio.sleep(1.0)  # let other nodes' subscriptions settle
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        n = 0
        start = time.perf_counter()
        while (now := time.perf_counter()) - start < seconds:
            target = start + n / rate
            if target > now:
                await asyncio.sleep(target - now)
            room = n % rooms
            body = {"channel": f"bench-{room}", "event": "B", "data": {"t": time.perf_counter(), "n": n}}
            r = await http.post(f"{urls[n % len(urls)]}/api/v1/events", json=body)
            if r.status == 200:
                expected += per_room[room]
            n += 1
    deadline = time.monotonic() + 15
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for c in socks:
        await c.disconnect()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "p50": statistics.median(ms) if ms else float("nan"),
        "p99": ms[int(len(ms) * 0.99) - 1] if ms else float("nan"),
        "max": ms[-1] if ms else float("nan"),
        "delivered": len(ms),
        "expected": expected,
    }


async def measure_replay(urls: list[str], count: int) -> dict[str, float]:
    got: list[int] = []
    first = socketio.AsyncClient(reconnection=False)
    last_position: dict[str, str] = {}
    first.on("R", lambda ch, data, meta: last_position.update(p=meta["position"]))
    await first.connect(urls[0], transports=["websocket"], wait_timeout=10)
    await first.call("subscribe", {"channel": "replay"})
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        await http.post(f"{urls[0]}/api/v1/events", json={"channel": "replay", "event": "R", "data": -1})
        for _ in range(200):
            if "p" in last_position:
                break
            await asyncio.sleep(0.01)
        await first.disconnect()
        for n in range(count):
            await http.post(f"{urls[n % len(urls)]}/api/v1/events", json={"channel": "replay", "event": "R", "data": n})
    again = socketio.AsyncClient(reconnection=False)
    again.on("R", lambda ch, data, meta: got.append(data))
    started = time.perf_counter()
    await again.connect(urls[-1], transports=["websocket"], wait_timeout=10, auth={"positions": {"replay": last_position["p"]}})
    await again.emit("subscribe", {"channel": "replay"})
    deadline = time.monotonic() + 60
    while len(got) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await again.disconnect()
    return {"replayed": len(got), "in_order": float(got == list(range(count))), "per_s": len(got) / elapsed if elapsed else 0.0}


async def run(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, float]] = {}
    with processes() as procs, tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        log_dir = Path(tmp)
        redis_url = start_redis(procs)
        layouts: dict[str, list[str | None]] = {"single": [None], "redis1": [redis_url], "redis3": [redis_url] * 3}
        for name, nodes in layouts.items():
            urls = [start_node(procs, url, log_dir) for url in nodes]
            await wait_ready(urls)
            lat = await measure_latency(urls, args.clients, args.rooms, args.rate, args.seconds)
            rep = await measure_replay(urls, args.replay)
            results[name] = {**lat, **{f"replay_{k}": v for k, v in rep.items()}}
            for p in procs[-len(urls):]:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
    rows = [
        ("delivery latency p50 (ms)", "p50", "{:.2f}"),
        ("delivery latency p99 (ms)", "p99", "{:.2f}"),
        ("delivery latency max (ms)", "max", "{:.2f}"),
        ("deliveries received / expected", None, ""),
        ("recovery: events replayed per second", "replay_per_s", "{:,.0f}"),
        ("recovery: replayed / sent, in order", None, ""),
    ]
    names = list(results)
    print(f"\n{args.clients} clients in {args.rooms} rooms, {args.rate:g} emits/s for {args.seconds:g} s; replay of {args.replay}")
    print("| metric | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label, key, fmt in rows:
        if key is None and label.startswith("deliveries"):
            cells = [f"{results[n]['delivered']:.0f} / {results[n]['expected']:.0f}" for n in names]
        elif key is None:
            cells = [f"{results[n]['replay_replayed']:.0f} / {args.replay}, {'yes' if results[n]['replay_in_order'] else 'NO'}" for n in names]
        else:
            cells = [fmt.format(results[n][key]) for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--rooms", type=int, default=30)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--replay", type=int, default=2000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
