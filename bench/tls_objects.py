"""How much memory Python's ssl objects take per server-side connection, without sockets (issue 13).

    .venv/bin/python bench/tls_objects.py [--connections 2000]

Builds realtime_sio's server context (realtime_sio.tls.server_context) for a P-256 leaf, then for N connections:
an ``SSLObject`` over two ``MemoryBIO`` (what asyncio and uvloop create per TLS connection), a full handshake with
an in-process client, and the client freed. Counts bytes the C allocator holds (glibc ``mallinfo2``: in use + mmapped)
before and after, so OpenSSL's own allocations are included (``tracemalloc`` does not see them). Prints one JSON line.
The event loop's TLS protocol object comes on top (uvloop: a 256 KiB read buffer per connection, malloc'ed and only
paged in as far as it is written): the idle bench (``bench/run.py --tls``) measures the whole process.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import ssl
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realtime_sio.tls import server_context
from tests.certs import TestCA


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2


def allocated() -> int:
    """Bytes malloc has handed out and not got back (heap in use + mmapped chunks)."""
    info = _libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _pump(src: ssl.MemoryBIO, dst: ssl.MemoryBIO) -> None:
    data = src.read()
    if data:
        dst.write(data)


def handshake(server: ssl.SSLObject, s_in: ssl.MemoryBIO, s_out: ssl.MemoryBIO, client_ctx: ssl.SSLContext) -> str:
    c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        _pump(c_out, s_in)
        _pump(s_out, c_in)
    try:  # the client takes the TLS 1.3 session tickets, as a real one would
        client.read(1)
    except ssl.SSLWantReadError:
        pass
    return str(server.version())


def measure(n: int, max_version: ssl.TLSVersion, num_tickets: int | None) -> dict[str, object]:
    ca = TestCA("tls_objects CA")
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "c.pem", Path(folder) / "k.pem"
        ca.issue().write(cert, key)
        ctx, _ = server_context(str(cert), str(key))
    if num_tickets is not None:
        ctx.num_tickets = num_tickets
    client_ctx = ca.client_context()
    client_ctx.maximum_version = max_version

    def fresh() -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
        s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        return ctx.wrap_bio(s_in, s_out, server_side=True), s_in, s_out

    warm = fresh()
    handshake(*warm, client_ctx)
    gc.collect()
    start = allocated()
    conns = [fresh() for _ in range(n)]
    gc.collect()
    created = allocated()
    versions = {handshake(*conn, client_ctx) for conn in conns}
    gc.collect()
    done = allocated()
    return {
        "connections": n,
        "tls": sorted(versions),
        "num_tickets": ctx.num_tickets,
        "kib_per_conn_created": round((created - start) / n / 1024, 1),
        "kib_per_conn_after_handshake": round((done - start) / n / 1024, 1),
        "server_session_cache_entries": ctx.session_stats()["number"],
        "openssl": ssl.OPENSSL_VERSION,
        "python": sys.version.split()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    for version, tickets in ((ssl.TLSVersion.TLSv1_3, None), (ssl.TLSVersion.TLSv1_3, 0), (ssl.TLSVersion.TLSv1_2, None)):
        print(json.dumps(measure(args.connections, version, tickets)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
