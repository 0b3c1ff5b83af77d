"""A client that floods acked ``ping`` events and never reads a reply; prints how far it got and whether it was blocked.

Shows the lean WebSocket's reply backpressure (docs/performance.md): start a server, then run this against it and
watch the server's RSS, e.g.

    REALTIME_SIO_PORT=6120 REALTIME_SIO_JWT_SECRET=$SECRET REALTIME_SIO_LOG_LEVEL=warning .venv/bin/realtime-sio serve &
    .venv/bin/python bench/reply_flood.py --port 6120 --jwt-secret "$SECRET" --seconds 15
    ps -o rss= -p <server pid>

Loopback only; stops by itself after ``--seconds`` or once its sends block for ``--block-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import time

import jwt


def _frame(payload: bytes) -> bytes:
    """A masked, final text frame, as a client sends it (payloads under 64 KiB)."""
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def flood(port: int, secret: str, seconds: float, block_seconds: float) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, and let little pile up here
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    token = jwt.encode({"sub": "flood", "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    writer.write(_frame(("40" + json.dumps({"token": token})).encode()))
    batch = b"".join(_frame(f'42{i}["ping"]'.encode()) for i in range(1000))
    started, sent, blocked = time.monotonic(), 0, False
    while time.monotonic() - started < seconds:
        writer.write(batch)
        sent += 1000
        try:
            await asyncio.wait_for(writer.drain(), block_seconds)
        except TimeoutError:
            blocked = True
            break
    print(json.dumps({"pings_sent": sent, "blocked": blocked, "seconds": round(time.monotonic() - started, 1)}))
    writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="realtime_sio port on 127.0.0.1")
    parser.add_argument("--jwt-secret", required=True, help="the server's REALTIME_SIO_JWT_SECRET")
    parser.add_argument("--seconds", type=float, default=15.0, help="longest run")
    parser.add_argument("--block-seconds", type=float, default=2.0, help="a send blocked this long counts as blocked")
    args = parser.parse_args()
    asyncio.run(flood(args.port, args.jwt_secret, args.seconds, args.block_seconds))


if __name__ == "__main__":
    main()
