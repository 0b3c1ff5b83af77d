"""Loop iterations per publish: how many turns of its event loop a server needs to answer ``POST /api/v1/events``.

On a saturated node (a reconnect storm) every turn of the loop is long (hundreds of milliseconds), so a request's latency is (turns it needs) x (length of a turn), and a publisher with a fixed number of
connections (Laravel's queue workers) gets throughput in proportion. This measures the turns: each server runs with
a callback that spends ``--burn-ms`` in every turn (realtime_sio: ``bench/benchkit/loop_burner.py``; the Node peer:
``node --require ./loop_burner.cjs``), one client POSTs one event at a time over one kept-alive connection, and the
median answer time divided by the burn is the figure. Four set-ups, one run: realtime_sio on one in-memory node and
as a cluster node (Redis), the Node socket.io 4.8 peer alone and with ``@socket.io/redis-adapter``.

    .venv/bin/python bench/loop_iterations.py                 # about a minute
    .venv/bin/python bench/loop_iterations.py --burn-ms 50 --posts 40

The client waits for the turn in progress when its request arrives (half a turn on average) and for its answer to be
read: about 1.5 turns are the floor of any server. Servers run with default settings. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from benchkit.procs import install_cleanup, stop_all
from benchkit.redis_server import start_redis
from benchkit.servers import (
    BENCH_API_KEY,
    NODE_PEER,
    PEER_DIR,
    REALTIME_SIO,
    ServerSpec,
    start_server,
)

LOGS = REPO / "bench" / "results" / "logs"


def post_latencies(port: int, posts: int) -> list[float]:
    """Seconds until each of ``posts`` sequential POSTs was answered 200, over one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {BENCH_API_KEY}", "Content-Type": "application/json"}
    took = []
    try:
        for n in range(posts):
            body = json.dumps({"channel": "room.1", "event": "loop-turns", "data": {"n": n}})
            start = time.perf_counter()
            connection.request("POST", "/api/v1/events", body, headers)
            response = connection.getresponse()
            response.read()
            took.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"POST answered {response.status}")
    finally:
        connection.close()
    return took


def measure(spec: ServerSpec, redis_url: str | None, burn_ms: float, posts: int, log: Path) -> tuple[float, float]:
    """(median ms, turns) for one set-up."""
    server = start_server(spec, log_path=log, core=None, redis_url=redis_url, base_env={"LOOP_BURN_MS": str(burn_ms)})
    try:
        post_latencies(server.port, 5)  # warm: connections, script cache, JIT
        median = statistics.median(post_latencies(server.port, posts))
    finally:
        server.stop()
    return median * 1000, median * 1000 / burn_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burn-ms", type=float, default=20.0, help="milliseconds every loop turn also spends (default 20)")
    parser.add_argument("--posts", type=int, default=60, help="POSTs per set-up (default 60)")
    args = parser.parse_args()
    install_cleanup()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    logs = LOGS / f"{stamp}-loop-iterations"
    python = sys.executable
    ours = ServerSpec(REALTIME_SIO, (python, str(REPO / "bench" / "benchkit" / "loop_burner.py")), REPO, {"PYTHONPATH": str(REPO)})
    peer = ServerSpec(NODE_PEER, ("node", "--require", "./loop_burner.cjs", "server.js"), PEER_DIR, {})
    peer_cluster = ServerSpec(NODE_PEER, peer.argv, PEER_DIR, {"PEER_REDIS_ADAPTER": "1"})
    rows: list[tuple[str, float, float]] = []
    try:
        redis, redis_url = start_redis(logs / "redis.log", None)
        for label, spec, url in (
            ("realtime_sio, one in-memory node", ours, None),
            ("realtime_sio, cluster node (Redis)", ours, redis_url),
            ("node peer, one node", peer, None),
            ("node peer, @socket.io/redis-adapter", peer_cluster, redis_url),
        ):
            median, turns = measure(spec, url, args.burn_ms, args.posts, logs / f"{label.split(',')[0]}-{len(rows)}.log")
            rows.append((label, median, turns))
            print(f"{label:40s} {median:8.1f} ms  {turns:5.2f} turns", flush=True)
        redis.stop()
    finally:
        stop_all()
    print(f"\n| set-up ({args.burn_ms:g} ms per loop turn, {args.posts} POSTs, median) | answered after | loop turns |")
    print("|---|---:|---:|")
    for label, median, turns in rows:
        print(f"| {label} | {median:,.1f} ms | {turns:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
