"""Process-level behaviour: probes, start-up errors, SIGTERM shutdown, malformed packets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import aiohttp

from tests.support import ROOT, Client, ServerProcess, eventually, free_port


async def test_health_ready_metrics(server: ServerProcess) -> None:
    """/health is ok, /ready is ready without Redis, /metrics is Prometheus text with the plan's gauge."""
    async with aiohttp.ClientSession() as http:
        health = await http.get(f"{server.url}/health")
        assert health.status == 200 and (await health.json())["status"] == "ok"
        ready = await http.get(f"{server.url}/ready")
        assert ready.status == 200 and (await ready.json()) == {"status": "ready", "redis": "disabled", "draining": False}
        metrics = await http.get(f"{server.url}/metrics")
        text = await metrics.text()
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE websocket_connections_total gauge" in text
    assert "process_resident_memory_bytes" in text


def test_bad_setting_stops_startup_with_one_line() -> None:
    """A bad value exits with status 2 and one line naming the variable and what it accepts."""
    env = {"PATH": "/usr/bin:/bin", "REALTIME_SIO_PORT": "not-a-port"}
    result = subprocess.run([sys.executable, "-m", "realtime_sio", "serve"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "REALTIME_SIO_PORT" in lines[0] and "integer" in lines[0]


def test_unknown_setting_is_refused() -> None:
    """A misspelt REALTIME_SIO_* variable is refused rather than silently ignored."""
    env = {"PATH": "/usr/bin:/bin", "REALTIME_SIO_JWT_SECRTE": "x"}
    result = subprocess.run([sys.executable, "-m", "realtime_sio", "serve"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 2 and "REALTIME_SIO_JWT_SECRTE: unknown setting" in result.stderr


def test_help_lists_every_option_with_default() -> None:
    """`serve --help` lists every setting's flag, variable and default."""
    from realtime_sio.settings import OPTIONS

    result = subprocess.run([sys.executable, "-m", "realtime_sio", "serve", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    for option in OPTIONS:
        assert option.flag in flat and option.env in flat
    assert "default 6001" in flat


def test_token_command_mints_a_verifiable_token() -> None:
    """`realtime-sio token` prints a JWT the server's verifier accepts with the given user and roles."""
    from realtime_sio.auth.tokens import TokenVerifier
    from tests.support import JWT, JWT_SECRET

    env = {"PATH": "/usr/bin:/bin", "REALTIME_SIO_JWT_SECRET": JWT_SECRET}
    out = subprocess.run(
        [sys.executable, "-m", "realtime_sio", "token", "--user", "42", "--roles", "admin,editor", "--name", "Ann"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=30, check=True,
    ).stdout.strip()
    identity = TokenVerifier(JWT).verify(out)
    assert identity.user_id == "42" and identity.roles == {"admin", "editor"} and identity.info["name"] == "Ann"


def test_port_in_use_is_a_clear_error() -> None:
    """Starting on a port that is taken exits 1 with a message naming the address."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "REALTIME_SIO_PORT": str(port)}
        result = subprocess.run([sys.executable, "-m", "realtime_sio", "serve"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 1 and f"127.0.0.1:{port}" in result.stderr


async def test_sigterm_drains_and_exits(server_factory: Any, clients: Any) -> None:
    """SIGTERM: /ready turns 503, new connections are refused, clients are disconnected, the process exits 0 in time."""
    srv = server_factory(REALTIME_SIO_DRAIN_SECONDS="2", REALTIME_SIO_SHUTDOWN_TIMEOUT="10")
    connected = [clients(srv.url) for _ in range(5)]
    for c in connected:
        await c.connect()
    assert srv.proc is not None
    srv.proc.send_signal(15)
    async with aiohttp.ClientSession() as http:
        ready_status = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ready_status = (await http.get(f"{srv.url}/ready")).status
            if ready_status == 503:
                break
        assert ready_status == 503
        late = await http.get(f"{srv.url}/socket.io/?EIO=4&transport=polling")
        assert late.status == 503
    await eventually(lambda: all(not c.sio.connected for c in connected), timeout=10, what="clients disconnected")
    assert srv.proc.wait(15) == 0
    log = srv.logs()
    assert "drain_started" in log and "shutdown_finished" in log


async def test_a_request_head_completed_after_the_site_stopped_is_not_served(server_factory: Any) -> None:
    """A connection accepted before shutdown whose request head completes once the site stopped listening is closed
    unanswered. aiohttp's handlers are being shut down by then (here the runner waits for a slow POST), and a
    handler started for it could outlive the event loop ("Task was destroyed but it is pending" at exit)."""
    from tests.support import API_KEY

    srv = server_factory(REALTIME_SIO_DRAIN_SECONDS="0.2", REALTIME_SIO_SHUTDOWN_TIMEOUT="10")
    _, slow = await asyncio.open_connection("127.0.0.1", srv.port)  # keeps aiohttp's shutdown waiting
    slow.write(f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
               "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
    late_reader, late = await asyncio.open_connection("127.0.0.1", srv.port)
    late.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # all but the blank line that ends the head
    await late.drain()
    assert srv.proc is not None
    srv.proc.send_signal(15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the listener closes when the site stops
        try:
            _, probe = await asyncio.open_connection("127.0.0.1", srv.port)
        except OSError:
            break
        probe.close()
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the site never stopped listening")
    late.write(b"\r\n")
    answer = await asyncio.wait_for(late_reader.read(), 10)
    late.close()
    slow.close()
    assert answer == b"", f"answered after the site stopped: {answer[:60]!r}"
    assert srv.proc.wait(15) == 0
    assert "shutdown_finished" in srv.logs()


async def test_malformed_packets_do_not_hurt_others(server: ServerProcess, clients: Any) -> None:
    """Raw garbage frames on a WebSocket are dropped; other clients keep receiving events."""
    good: Client = clients(server.url)
    await good.connect()
    await good.joined("calm")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket")
        await ws.receive()  # engine.io open packet
        await ws.send_str("40")  # socket.io connect
        await ws.receive()
        for frame in ("42[", "42{\"a\":", "4zzz", "9", "42[\"subscribe\",", "\x00\xff", "42" + "[" * 5000):
            await ws.send_str(frame)
        await ws.send_bytes(b"\x00\x01garbage")
        await ws.close()
    from tests.integration.test_channels import post_event

    await post_event(server.url, {"channel": "calm", "event": "Still", "data": 1})
    await good.wait_for("Still")
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{server.url}/health")).status == 200
        metrics = await (await http.get(f"{server.url}/metrics")).text()
    # Each undecodable packet is counted; the log has a line, not an ERROR with a traceback.
    dropped = next(line for line in metrics.splitlines() if line.startswith('realtime_sio_bad_input_total{reason="malformed_packet"}'))
    assert float(dropped.split()[-1]) >= 4
    log = server.logs()
    assert '"reason": "malformed_packet"' in log
    assert "Traceback" not in log and "message async handler error" not in log


# Socket.IO packets that decode but that no client sends (all but two answered by upstream with an ERROR traceback
# before: 42[1] and 431{} were dropped quietly); after each one the same socket's next event must still be handled.
UNEXPECTED_PACKETS: dict[str, list[str | bytes]] = {
    "event_without_data": ["42"],
    "event_as_object": ["42{}"],
    "event_empty_list": ["42[]"],
    "event_name_not_a_string": ["42[1]"],
    "ack_without_list": ["431{}"],
    "connect_error_from_client": ["44{}"],
    "binary_event_without_attachments": ["45[\"x\"]"],
    "unknown_type": ["49"],
    "placeholder_out_of_range": ['451-["x",{"_placeholder":true,"num":5}]', b"\x01"],
    "placeholder_not_a_number": ['451-["x",{"_placeholder":true,"num":"a"}]', b"\x01"],
    "text_instead_of_attachment": ['451-["x",{"_placeholder":true,"num":0}]'],
    "attachment_after_the_last": ["45[\"x\"]", b"\x01"],
}


async def test_packets_no_client_sends_are_refused_and_the_socket_goes_on(server: ServerProcess) -> None:
    """Each unexpected Socket.IO packet is counted as malformed_packet, logged without a traceback, and the socket
    that sent it still gets its next ping answered (a broken binary packet does not swallow later packets)."""
    async with aiohttp.ClientSession() as http:
        for name, frames in UNEXPECTED_PACKETS.items():
            ws = await http.ws_connect(f"{server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket")
            await ws.receive()  # engine.io open packet
            await ws.send_str("40")
            await ws.receive()  # socket.io connect ack
            for frame in frames:
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
            await ws.send_str('427["ping"]')  # the socket's next event, with ack id 7
            answer = await ws.receive(timeout=10)
            assert answer.data == '437["pong"]', f"{name}: {answer.data!r}"
            await ws.close()
        metrics = await (await http.get(f"{server.url}/metrics")).text()
    dropped = next(line for line in metrics.splitlines() if line.startswith('realtime_sio_bad_input_total{reason="malformed_packet"}'))
    assert float(dropped.split()[-1]) >= len(UNEXPECTED_PACKETS)
    log = server.logs()
    assert "Traceback" not in log and "async handler error" not in log and '"level": "error"' not in log


async def test_oversized_socket_message_closes_only_that_socket(server_factory: Any, clients: Any) -> None:
    """A message over REALTIME_SIO_MAX_MESSAGE_BYTES drops that connection; the server and others carry on."""
    srv = server_factory(REALTIME_SIO_MAX_MESSAGE_BYTES="4096")
    other: Client = clients(srv.url)
    await other.connect()
    big: Client = clients(srv.url)
    await big.connect()
    await big.sio.emit("subscribe", {"channel": "x", "pad": "y" * 10_000})
    await eventually(lambda: not big.sio.connected, timeout=10, what="oversized sender dropped")
    assert await other.sio.call("ping") == "pong"


def test_embedded_default_needs_no_configuration() -> None:
    """With no REALTIME_SIO_* at all the server starts, serves /health, and stops on SIGTERM."""
    proc = ServerProcess(env={"REALTIME_SIO_PORT": str(free_port())})
    proc.start()
    try:
        import urllib.request

        with urllib.request.urlopen(f"{proc.url}/health", timeout=5) as response:
            assert response.status == 200
        assert proc.terminate() == 0
    finally:
        proc.kill()




async def test_client_helper_is_served(server: ServerProcess) -> None:
    """The recovery ES module is served from the package at /client/recovery.mjs; unknown assets are 404."""
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{server.url}/client/recovery.mjs")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/javascript")
        assert "export function trackPositions" in await r.text()
        assert (await http.get(f"{server.url}/client/../settings.py")).status == 404


async def test_runtime_stall_metrics_are_exposed(server: ServerProcess) -> None:
    """/metrics reports event-loop lag probes and GC pauses by generation (the loop probe runs every 50 ms)."""
    import re

    async with aiohttp.ClientSession() as http:
        text = ""
        loop_count = 0.0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and loop_count < 2:
            text = await (await http.get(f"{server.url}/metrics")).text()
            match = re.search(r"^realtime_sio_event_loop_lag_seconds_count (\S+)$", text, re.MULTILINE)
            loop_count = float(match.group(1)) if match else 0.0
    assert loop_count >= 2
    assert "realtime_sio_gc_pause_seconds_count{generation=\"0\"}" in text


async def test_client_close_answers_the_parked_poll(server: ServerProcess) -> None:
    """A long-polling client's CLOSE answers its parked GET at once instead of after ping_interval + ping_timeout."""
    import json

    async with aiohttp.ClientSession() as http:
        base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        opened = await (await http.get(base)).text()
        sid = json.loads(opened[1:])["sid"]
        url = f"{base}&sid={sid}"
        assert (await http.post(url, data="40")).status == 200
        await http.get(url)  # the socket.io CONNECT answer
        parked = asyncio.ensure_future(http.get(url))  # nothing to send: the server holds this GET
        await asyncio.sleep(0.2)
        assert not parked.done()
        assert (await http.post(url, data="1")).status == 200  # Engine.IO CLOSE from the client
        response = await asyncio.wait_for(parked, timeout=10)  # far below the 45 s it used to hang
        assert response.status == 200
