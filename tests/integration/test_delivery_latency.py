"""Delivery latency as users feel it (issue 15): real clients behind a TCP proxy that holds every chunk a known time.

The proxy adds ``DELAY`` seconds each way, so an event reaches the client ``DELAY`` after the server wrote it and an
acknowledgement comes back ``DELAY`` after that. The estimate (written + half the measured round trip) should land
near ``DELAY``; the acknowledged figure (an upper bound, the way back included) near ``2 * DELAY``. Tolerances are
wide: the machine running the tests is shared and loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_echo_e2e import JS, run_node
from tests.pusher_client import PUSHER_APPS, PusherClient
from tests.support import API_KEY, ROOT, Client, eventually, token

DELAY = 0.1  # seconds the proxy holds each chunk, each way
ESTIMATED = "realtime_sio_delivery_estimated_seconds"
ACKNOWLEDGED = "realtime_sio_delivery_acknowledged_seconds"


class DelayProxy:
    """A TCP proxy that holds every chunk ``delay`` seconds in each direction (it keeps reading meanwhile, so the
    link streams: a delay, not a bandwidth limit) and stops reading when its peer does not read."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)
            for coro in (self._read(src, held), self._write(held, dst)):
                task = asyncio.get_running_loop().create_task(coro)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _read(self, src: asyncio.StreamReader, held: asyncio.Queue[tuple[float, bytes]]) -> None:
        loop = asyncio.get_running_loop()
        while chunk := await src.read(65536):
            await held.put((loop.time() + self.delay, chunk))
        await held.put((loop.time() + self.delay, b""))

    async def _write(self, held: asyncio.Queue[tuple[float, bytes]], dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, chunk = await held.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                with contextlib.suppress(OSError):
                    dst.write_eof()
                return
            dst.write(chunk)
            await dst.drain()


async def histogram(url: str, name: str, **labels: str) -> tuple[dict[float, float], float, float]:
    """(cumulative buckets, count, sum) of ``name`` from /metrics, summed over series matching ``labels``."""
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{url}/metrics")).text()
    buckets: dict[float, float] = {}
    count = total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.startswith(name) or any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            if s.name == name + "_bucket":
                buckets[float(s.labels["le"])] = buckets.get(float(s.labels["le"]), 0.0) + s.value
            elif s.name == name + "_count":
                count += s.value
            elif s.name == name + "_sum":
                total += s.value
    return buckets, count, total


async def publish(url: str, channel: str, event: str, data: Any) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        r = await http.post(f"{url}/api/v1/events", json={"channel": channel, "event": event, "data": data})
        assert r.status == 200, await r.text()


def acknowledging(client: Client, event: str) -> list[dict[str, Any]]:
    """Make ``client`` answer every ``ack`` id it is sent, as /client/recovery.mjs does; returns the metadata seen."""
    seen: list[dict[str, Any]] = []

    async def on_event(channel: str, data: Any, meta: Any = None) -> None:
        client.events.append((event, (channel, data, meta)))
        if isinstance(meta, dict):
            seen.append(meta)
            if "ack" in meta:
                await client.sio.emit("latency:ack", meta["ack"])

    client.sio.on(event, on_event)
    return seen


async def test_estimate_and_acknowledged_figure_match_an_injected_delay(server_factory: Any, clients: Any) -> None:
    """Through a proxy adding 100 ms each way, the estimate lands near 100 ms and the acknowledged figure near 200 ms."""
    srv = server_factory(REALTIME_SIO_DELIVERY_ACK_SAMPLE_RATE="1", REALTIME_SIO_PING_INTERVAL="1")
    proxy = DelayProxy(srv.port, DELAY)
    await proxy.start()
    try:
        client: Client = clients(proxy.url)
        seen = acknowledging(client, "Tick")
        await client.connect(auth={"latency": True})
        await client.joined("lat", timeout=20)
        for n in range(10):
            await publish(srv.url, "lat", "Tick", {"n": n})
            await client.wait_for("Tick", n + 1, timeout=20)
        assert all(isinstance(meta.get("ack"), int) for meta in seen)
        _, count, total = await histogram(srv.url, ESTIMATED, source="http", protocol="websocket")
        assert count == 10
        assert 0.7 * DELAY <= total / count <= 2.5 * DELAY, f"estimate {total / count:.3f} s for a {DELAY} s delay"
        await eventually(lambda: True)

        async def acked() -> float:
            return (await histogram(srv.url, ACKNOWLEDGED, source="http", protocol="websocket"))[1]

        deadline = time.monotonic() + 20
        while await acked() < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        _, count, total = await histogram(srv.url, ACKNOWLEDGED, source="http", protocol="websocket")
        assert count == 10
        assert 2 * DELAY <= total / count <= 5 * DELAY, f"acknowledged {total / count:.3f} s for {DELAY} s each way"
    finally:
        await proxy.close()


async def test_polling_deliveries_are_counted_under_their_own_protocol(server_factory: Any, clients: Any) -> None:
    """A long-polling client behind the delay proxy: its deliveries count as protocol="polling", at least the delay."""
    srv = server_factory()
    proxy = DelayProxy(srv.port, DELAY)
    await proxy.start()
    try:
        client: Client = clients(proxy.url)
        await client.connect(transports=["polling"])
        await client.joined("poll", timeout=20)
        for n in range(5):
            await publish(srv.url, "poll", "Tick", {"n": n})
            await client.wait_for("Tick", n + 1, timeout=20)
        _, count, total = await histogram(srv.url, ESTIMATED, protocol="polling")
        assert count == 5
        assert total / count >= 0.7 * DELAY, f"polling estimate {total / count:.3f} s for a {DELAY} s delay"
    finally:
        await proxy.close()


async def test_pusher_deliveries_are_estimated_from_the_pusher_ping_round_trip(server_factory: Any) -> None:
    """A Pusher client behind the delay proxy answers the server's pusher:ping; its deliveries count as
    protocol="pusher" and land near the delay (written + half the ping's round trip)."""
    srv = server_factory(REALTIME_SIO_PUSHER_APPS=PUSHER_APPS, REALTIME_SIO_PUSHER_ACTIVITY_TIMEOUT="1")
    proxy = DelayProxy(srv.port, DELAY)
    await proxy.start()
    client = PusherClient(proxy.url, answer_pings=True)
    try:
        await client.connect()
        await client.joined("lat-pusher")
        await client.wait_for("pusher:ping", timeout=20)  # the server's ping after a second of silence, answered
        await client.ping()  # our pong went out before this ping: once its answer is back, the server has the round trip
        for n in range(10):
            await publish(srv.url, "lat-pusher", "Tick", {"n": n})
            await client.wait_for("Tick", n + 1, timeout=20)
        _, count, total = await histogram(srv.url, ESTIMATED, source="http", protocol="pusher")
        assert count == 10
        assert 0.7 * DELAY <= total / count <= 2.5 * DELAY, f"pusher estimate {total / count:.3f} s for a {DELAY} s delay"
    finally:
        await client.close()
        await proxy.close()


async def test_a_client_that_stops_reading_shows_up_as_slow(server_factory: Any) -> None:
    """Events sent to a client that stopped reading for HOLD seconds are counted at least HOLD late, not as fast."""
    hold = 1.5
    srv = server_factory(REALTIME_SIO_MAX_BUFFERED_BYTES="67108864")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's buffers fill early
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, ("127.0.0.1", srv.port))
        await loop.sock_sendall(
            sock,
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        await loop.sock_recv(sock, 4096)  # 101 and the OPEN frame (small: one read)

        def client_frame(text: str) -> bytes:  # masked with a zero key: the payload goes as is
            data = text.encode()
            assert len(data) < 126
            return bytes([0x81, 0x80 | len(data), 0, 0, 0, 0]) + data

        await loop.sock_sendall(sock, client_frame("40"))
        await loop.sock_sendall(sock, client_frame("42" + json.dumps(["subscribe", {"channel": "stall"}])))
        before = (await histogram(srv.url, ESTIMATED))[1]
        # Publish until the server holds deliveries it could not write out (the estimate count stops following).
        payload = "x" * 50_000
        sent = 0
        for n in range(400):
            await publish(srv.url, "stall", "Big", {"n": n, "p": payload})
            sent += 1
            if n >= 5 and (await histogram(srv.url, ESTIMATED))[1] - before < sent - 3:
                break
        stalled_at = time.monotonic()
        counted_fast = (await histogram(srv.url, ESTIMATED))[1] - before
        assert counted_fast < sent, "every delivery to a client that does not read was counted as written"
        await asyncio.sleep(hold)  # the injected stall: the client reads nothing for this long
        received = 0
        while received < sent * 50_000 and time.monotonic() - stalled_at < 60:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 30)
            assert chunk, "server closed the stalled connection"
            received += len(chunk)

        async def counted() -> float:
            return (await histogram(srv.url, ESTIMATED))[1] - before

        deadline = time.monotonic() + 20
        while await counted() < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        buckets, count, _ = await histogram(srv.url, ESTIMATED)
        slow = count - buckets[1.0]
        assert count - before == sent
        assert slow >= sent - counted_fast, f"{slow} of {sent} deliveries counted over 1 s after a {hold} s stall"
    finally:
        sock.close()


async def test_sampling_stays_within_its_rate_and_leaves_other_clients_alone(server_factory: Any, clients: Any) -> None:
    """At rate 0.1, 400 deliveries ask for 40 ± 5 σ acknowledgements; a client that did not opt in gets none."""
    srv = server_factory(REALTIME_SIO_DELIVERY_ACK_SAMPLE_RATE="0.1")
    opted: Client = clients(srv.url)
    seen = acknowledging(opted, "Tick")
    await opted.connect(auth={"latency": True})
    await opted.joined("rate")
    plain: Client = clients(srv.url)
    await plain.connect()
    await plain.joined("rate")
    n = 400
    for i in range(n):
        await publish(srv.url, "rate", "Tick", {"n": i})
    await opted.wait_for("Tick", n, timeout=30)
    await plain.wait_for("Tick", n, timeout=30)
    asked = sum(1 for meta in seen if "ack" in meta)
    mean, sd = n * 0.1, (n * 0.1 * 0.9) ** 0.5
    assert mean - 5 * sd <= asked <= mean + 5 * sd, f"{asked} of {n} deliveries asked for an acknowledgement"
    assert not any(isinstance(a[-1], dict) and "ack" in a[-1] for a in plain.named("Tick"))
    await eventually(lambda: True)
    deadline = time.monotonic() + 10
    while (await histogram(srv.url, ACKNOWLEDGED))[1] < asked and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (await histogram(srv.url, ACKNOWLEDGED))[1] == asked


async def test_bad_acknowledgements_are_dropped_without_a_traceback(server_factory: Any, clients: Any) -> None:
    """Acks that are not ids, ids never asked for, and repeats are dropped and counted; the connection stays up."""
    srv = server_factory(REALTIME_SIO_DELIVERY_ACK_SAMPLE_RATE="1")
    client: Client = clients(srv.url)
    seen = acknowledging(client, "Tick")
    await client.connect(auth={"latency": True})
    await client.joined("bad")
    await publish(srv.url, "bad", "Tick", {})
    await client.wait_for("Tick")
    await eventually(lambda: bool(seen))
    for junk in ("x", -1, 2**60, None, {"ack": 1}, 1.5, True, 987654):
        await client.sio.emit("latency:ack", junk)
    await client.sio.emit("latency:ack", seen[0]["ack"])  # the real one was already acknowledged once
    assert await client.sio.call("ping", timeout=10) == "pong"
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{srv.url}/metrics")).text()
    assert 'realtime_sio_bad_input_total{reason="latency_ack_invalid"} 7.0' in text
    assert 'realtime_sio_bad_input_total{reason="latency_ack_unknown"} 2.0' in text
    assert (await histogram(srv.url, ACKNOWLEDGED))[1] == 1


async def test_watchdog_rolls_back_when_delivery_p99_exceeds_its_limit(server_factory: Any, clients: Any, tmp_path: Any) -> None:
    """Deliveries 100 ms late (the proxy) against --max-delivery-p99 0.05: the watchdog runs its rollback, exit 2."""
    srv = server_factory()
    proxy = DelayProxy(srv.port, DELAY)
    await proxy.start()
    try:
        client: Client = clients(proxy.url)
        await client.connect()
        await client.joined("wd", timeout=20)
        for n in range(25):
            await publish(srv.url, "wd", "Tick", {"n": n})
        await client.wait_for("Tick", 25, timeout=20)
        marker = tmp_path / "rolled-back"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "realtime_sio", "watchdog", "--url", srv.url, "--interval", "0.2", "--max-failures", "1",
            "--max-delivery-p99", "0.05", "--rollback-cmd", f"touch {marker}", "--max-checks", "3",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2, out.decode()
        assert marker.exists()
        assert b"delivery_p99" in out
    finally:
        await proxy.close()


async def test_served_helper_acknowledges_for_socketio_client_and_echo(server_factory: Any, tmp_path: Path) -> None:
    """/client/recovery.mjs opts in and acknowledges (plain socket.io-client and Laravel Echo, through the delay
    proxy): every delivery to them is acknowledged at rate 1, near 2 x the delay; a client without it sees no ack id."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[[channels]]\npattern = "private-lat.{id}"\nallow = "authenticated"\n')
    srv = server_factory(REALTIME_SIO_CONFIG_FILE=str(rules), REALTIME_SIO_DELIVERY_ACK_SAMPLE_RATE="1")
    proxy = DelayProxy(srv.port, DELAY)
    await proxy.start()
    try:
        count = 10
        result = await run_node(
            JS / "latency_flow.mjs", {"url": proxy.url, "publishUrl": srv.url, "apiKey": API_KEY, "token": token(5), "count": count}
        )
        assert result["ok"], result
        assert all(isinstance(meta, dict) and isinstance(meta.get("ack"), int) for meta in result["seen"]["plain"])
        assert all(meta is None or "ack" not in meta for meta in result["seen"]["bare"])
        assert result["seen"]["echo"] == list(range(count))
        _, acked, total = await histogram(srv.url, ACKNOWLEDGED, source="http", protocol="websocket")
        assert acked == 2 * count  # the plain client's and Echo's: the bare client was never asked
        assert 2 * DELAY <= total / acked <= 5 * DELAY, f"acknowledged {total / acked:.3f} s for {DELAY} s each way"
    finally:
        await proxy.close()
