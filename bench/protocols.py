"""Socket.IO vs Pusher clients on one realtime_sio, default settings: memory per idle connection and server CPU per
fan-out delivery (issue 12).

    flock /work/heavy.lock .venv/bin/python bench/protocols.py            # 5,000 idle connections, 2,000 x 100 fan-out
    .venv/bin/python bench/protocols.py --idle 1000 --fanout 500 --events 50   # quick

Each figure comes from its own fresh server process (so one protocol's heap does not carry the other's): RSS before
and after ``--idle`` subscribed connections (divided by the count), and the server's user+system CPU time while
``--events`` sidecar events reach ``--fanout`` subscribers (divided by the deliveries). Socket.IO clients are
socket.io-client 4 on WebSocket; Pusher clients are Node ``ws`` speaking pusher-js 8's protocol 7 (pusher-js itself
adds nothing on the wire). Prints a Markdown table and writes it to bench/results/protocols.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOADGEN = REPO / "bench" / "loadgen" / "protocols.js"
API_KEY = "bench-api-key-0123456789"
APP = ("bench", "bench-key", "bench-secret-0123456789")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(python: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
    env.update(
        REALTIME_SIO_PORT=str(port),
        REALTIME_SIO_API_KEY=API_KEY,
        REALTIME_SIO_CORS_ORIGINS="*",
        REALTIME_SIO_LOG_LEVEL="warning",
        REALTIME_SIO_PUSHER_APPS=":".join(APP),
    )
    proc = subprocess.Popen([python, "-m", "realtime_sio", "serve"], env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clients(port: int, protocol: str, count: int, channel: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["node", str(LOADGEN), f"http://127.0.0.1:{port}", protocol, str(count), channel, APP[1]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = json.loads(proc.stdout.readline())
    assert line.get("ready") == count, line
    return proc


def publish(port: int, channel: str, n: int) -> None:
    for i in range(n):
        body = json.dumps({"channel": channel, "event": "Tick", "data": {"i": i, "pad": "x" * 64}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/events", body, {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def settle(pid: int) -> int:
    """RSS once it stopped moving (two reads 1 s apart within 1%)."""
    previous = rss_kib(pid)
    for _ in range(10):
        time.sleep(1)
        now = rss_kib(pid)
        if abs(now - previous) <= previous // 100:
            return now
        previous = now
    return previous


def measure(python: str, protocol: str, idle: int, fanout: int, events: int) -> dict[str, float]:
    server, port = start_server(python)
    try:
        warm = clients(port, protocol, 200, "warm")  # imports, JIT-free but lazy paths, allocator pools
        warm.stdin.close()  # type: ignore[union-attr]
        warm.wait(30)
        before = settle(server.pid)
        idle_clients = clients(port, protocol, idle, "idle")
        after = settle(server.pid)
        idle_clients.stdin.close()  # type: ignore[union-attr]
        idle_clients.wait(60)
    finally:
        server.kill()
        server.wait()
    server, port = start_server(python)
    try:
        fan = clients(port, protocol, fanout, "fan")
        assert fan.stdin is not None and fan.stdout is not None
        time.sleep(1)
        cpu0 = cpu_seconds(server.pid)
        publish(port, "fan", events)
        fan.stdin.write(f"{events}\n")
        fan.stdin.flush()
        assert json.loads(fan.stdout.readline()) == {"received": events}
        cpu1 = cpu_seconds(server.pid)
        fan.stdin.close()
        fan.wait(60)
    finally:
        server.kill()
        server.wait()
    return {
        "kib_per_idle_connection": round((after - before) / idle, 2),
        "cpu_us_per_delivery": round((cpu1 - cpu0) / (events * fanout) * 1e6, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--fanout", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    rows = {p: measure(args.python, p, args.idle, args.fanout, args.events) for p in ("socketio", "pusher")}
    lines = [
        f"Idle: {args.idle} subscribed connections; fan-out: {args.events} events x {args.fanout} subscribers; default settings.",
        "",
        "| Clients | KiB per idle connection | server CPU µs per delivery |",
        "|---|---|---|",
    ]
    names = {"socketio": "socket.io-client 4 (WebSocket)", "pusher": "Pusher protocol 7 (pusher-js wire, Node ws)"}
    for protocol, row in rows.items():
        lines.append(f"| {names[protocol]} | {row['kib_per_idle_connection']} | {row['cpu_us_per_delivery']} |")
    text = "\n".join(lines)
    print(text)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "protocols.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
