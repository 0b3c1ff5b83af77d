"""Memory per idle lean WebSocket, plain and over TLS, on uvloop and on asyncio's own loop (issue 13).

    .venv/bin/python bench/tls_loops.py [--connections 1000]

Starts the real server four times (tests/support.py ServerProcess; ``event_loop="asyncio"`` hides uvloop from the
CLI), opens N Engine.IO WebSockets (raw upgrade, over TLS with a test CA where asked) from this process after a
warm-up round, and reads the server's ``VmRSS`` growth per connection. No Socket.IO CONNECT is sent, so the figures
are the transport's cost: compare them with each other, not with bench/run.py's idle rows. One JSON line per case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.certs import TestCA
from tests.support import ServerProcess, base_env, eventually

UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def open_socket(port: int, ctx: ssl.SSLContext | None) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    writer.write(UPGRADE)
    await reader.readuntil(b"\r\n\r\n")
    return writer


async def measure(loop: str, tls: bool, n: int, folder: Path, ca: TestCA) -> dict[str, object]:
    env = base_env(REALTIME_SIO_LOG_LEVEL="warning")
    if tls:
        env.update(REALTIME_SIO_TLS_CERT_FILE=str(folder / "c.pem"), REALTIME_SIO_TLS_KEY_FILE=str(folder / "k.pem"))
    server = ServerProcess(env=env, event_loop=loop)
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    ctx = ca.client_context() if tls else None
    try:
        warm = [await open_socket(server.port, ctx) for _ in range(200)]
        for writer in warm:
            writer.close()
        samples: list[int] = []

        async def settled() -> None:  # RSS stops moving: unchanged over 25 reads (~0.25 s)
            samples.clear()

            def still() -> bool:
                samples.append(rss(pid))
                return len(samples) > 25 and samples[-1] == samples[-26]

            await eventually(still, timeout=30, what="RSS to settle")

        await settled()
        base = samples[-1]
        held = []
        for _ in range(0, n, 50):
            held += await asyncio.gather(*(open_socket(server.port, ctx) for _ in range(50)))
        await settled()
        return {"loop": loop, "tls": tls, "connections": n, "kib_per_connection": round((samples[-1] - base) / n / 1024, 1)}
    finally:
        server.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    ca = TestCA("tls_loops CA")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        ca.issue().write(folder / "c.pem", folder / "k.pem")
        for loop in ("uvloop", "asyncio"):
            for tls in (False, True):
                print(json.dumps(await measure(loop, tls, args.connections, folder, ca)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
