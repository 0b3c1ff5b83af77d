"""No client holds a connection without a deadline, and oversize input is answered early (issue 11 item 8).

Raw sockets against a real server with short deadlines: a head that never ends, a second head dribbled on a
kept-alive connection, bodies fed slowly to the dashboard login, the Pusher API and the events API, an oversize
polling POST. Each wait below has a deadline far above the server's own, so a server without the deadline fails the
test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from tests.integration.test_websocket import RawWebSocket, connected_socket
from tests.support import ServerProcess, base_env

DEADLINE = 0.5  # the server's head/body deadlines in these tests, seconds
KEEPALIVE = 1.0
WAIT = 15.0  # how long a test waits for the server to act before it fails
DASHBOARD_TOKEN = "dashboard-token-0123456789"
PUSHER_APP = "app-1:key-1:secret-one-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """A server with half-second head and body deadlines, a one-second keep-alive, the dashboard and a Pusher app."""
    proc = ServerProcess(
        env=base_env(
            REALTIME_SIO_HEAD_TIMEOUT=str(DEADLINE),
            REALTIME_SIO_BODY_TIMEOUT=str(DEADLINE),
            REALTIME_SIO_KEEPALIVE_TIMEOUT=str(KEEPALIVE),
            REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN,
            REALTIME_SIO_PUSHER_APPS=PUSHER_APP,
        )
    )
    proc.start()
    yield proc
    proc.kill()


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (fails after WAIT seconds)."""
    return await asyncio.wait_for(reader.read(), WAIT)


async def dribble_until_closed(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, piece: bytes) -> bytes:
    """Send ``piece`` every 50 ms, as a slow client would, until the server closes; returns what it answered."""

    async def feed() -> None:
        try:
            while True:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, OSError):
            pass

    feeder = asyncio.create_task(feed())
    try:
        return await read_until_closed(reader)
    finally:
        feeder.cancel()
        writer.close()


async def bad_input(server: ServerProcess, reason: str) -> float:
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{server.url}/metrics")).text()
    prefix = f'realtime_sio_bad_input_total{{reason="{reason}"}} '
    return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


async def test_a_head_that_never_ends_is_closed_even_while_bytes_keep_coming(server: ServerProcess) -> None:
    """A request head fed a header line at a time is closed after HEAD_TIMEOUT, however long the client keeps going."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    await dribble_until_closed(writer, reader, b"X-Slow: 1\r\n")


async def test_a_head_over_the_limit_without_its_blank_line_gets_431(server: ServerProcess) -> None:
    """More than MAX_HEAD_BYTES of head without the blank line is answered 431 at once (not handed on, not waited for)."""
    before = await bad_input(server, "head_too_large")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 17_000 + b"\r\n")
    answer = await read_until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "head_too_large"
    assert await bad_input(server, "head_too_large") == before + 1


async def test_a_second_head_on_a_kept_alive_connection_has_a_deadline(server: ServerProcess) -> None:
    """After a first request is answered, a second head dribbled on the same connection is cut at KEEPALIVE_TIMEOUT."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert first.startswith(b"HTTP/1.1 200"), first
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    rest = await dribble_until_closed(writer, reader, b"X-Slow: 1\r\n")
    assert b"HTTP/1.1" not in rest.partition(b"\r\n\r\n")[2], "the second request was never complete, so never answered"


async def test_an_idle_kept_alive_connection_is_closed(server: ServerProcess) -> None:
    """A kept-alive connection that sends nothing after its first answer is closed after KEEPALIVE_TIMEOUT."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_until_closed(reader)).startswith(b"HTTP/1.1 200")
    writer.close()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/dashboard/login", "application/x-www-form-urlencoded"),
        ("/apps/app-1/events?auth_key=key-1", "application/json"),
        ("/api/v1/events", "application/json"),
    ],
)
async def test_a_slowly_fed_body_is_answered_408_and_closed(server: ServerProcess, path: str, content_type: str) -> None:
    """A body that does not arrive in full within BODY_TIMEOUT gets 408 request_timeout and the connection ends,
    before any authentication (dashboard login, Pusher API, events API)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 4000\r\n\r\n"
    writer.write(head.encode())
    answer = await dribble_until_closed(writer, reader, b"x")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"request_timeout"' in answer


async def test_a_slowly_fed_polling_post_is_answered_408_and_closed(server: ServerProcess) -> None:
    """A polling POST (served by the router itself, not aiohttp) whose body does not arrive in full within
    BODY_TIMEOUT gets 408 request_timeout and the connection ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = "POST /socket.io/?EIO=4&transport=polling&sid=nosuch HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"
    writer.write(head.encode())
    answer = await dribble_until_closed(writer, reader, b"x")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"request_timeout"' in answer


async def test_polling_requests_share_a_kept_alive_connection_that_has_a_deadline(server: ServerProcess) -> None:
    """Long-polling requests answered by the router keep the connection open: a handshake, then a poll and another
    route (aiohttp's) on the same connection are answered; then the idle connection is closed at KEEPALIVE_TIMEOUT."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head, head
    assert b"Date:" not in head, "answered by the upgrade router itself (aiohttp's answers carry a Date header)"
    length = int(head.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0])
    opened = await asyncio.wait_for(reader.readexactly(length), WAIT)
    sid = json.loads(opened[1:])["sid"]
    # a pipelined pair: a POST on the session and a probe of another route, sent before the first answer
    body = b"40"
    writer.write(
        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    posted = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert posted.startswith(b"HTTP/1.1 200"), posted
    await asyncio.wait_for(reader.readexactly(int(posted.lower().partition(b"content-length: ")[2].partition(b"\r\n")[0])), WAIT)
    rest = await read_until_closed(reader)  # /health answered by aiohttp, then the idle connection is closed
    assert rest.startswith(b"HTTP/1.1 200") and b"Date:" in rest.partition(b"\r\n\r\n")[0], rest[:200]
    writer.close()


async def test_a_polling_post_announcing_too_much_is_answered_413_at_once(server: ServerProcess) -> None:
    """A polling POST whose Content-Length is over MAX_MESSAGE_BYTES gets 413 before its body is sent (it used to
    be left unanswered, holding the connection)."""
    async with aiohttp.ClientSession() as http:
        opened = await (await http.get(f"{server.url}/socket.io/?EIO=4&transport=polling")).text()
    sid = json.loads(opened[1:])["sid"]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 2000000\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413 "), head


async def test_a_chunked_body_growing_past_the_limit_is_answered_413(server: ServerProcess) -> None:
    """A body without a Content-Length that grows past the route's limit is refused with 413 payload_too_large."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 60_000
    for _ in range(4):  # 240 KB, over API_MAX_BODY_BYTES (100 KB)
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    writer.write(b"0\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413 "), head


async def test_bodies_within_the_limits_still_reach_their_handlers(server: ServerProcess) -> None:
    """Read once by the body middleware, a body still reaches its handler: polling POSTs are handled, the events
    API parses its JSON (401 without the key), the dashboard login reads its form (401 for a wrong token)."""
    async with aiohttp.ClientSession() as http:
        opened = await (await http.get(f"{server.url}/socket.io/?EIO=4&transport=polling")).text()
        sid = json.loads(opened[1:])["sid"]
        url = f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        posted = await http.post(url, data="40")
        assert posted.status == 200 and await posted.text() == "OK"
        connected = await (await http.get(url)).text()
        assert connected.startswith("40{"), connected
        events = await http.post(f"{server.url}/api/v1/events", json={"channel": "a", "event": "b", "data": 1})
        assert events.status == 401
        login = await http.post(f"{server.url}/dashboard/login", data={"token": "wrong-token-wrong-token"}, allow_redirects=False)
        assert login.status == 401


async def test_the_first_head_has_a_deadline_with_the_lean_websocket_off(server_factory: Callable[..., ServerProcess]) -> None:
    """With REALTIME_SIO_LEAN_WEBSOCKET=false the router still reads every head: HEAD_TIMEOUT and MAX_HEAD_BYTES apply."""
    srv = server_factory(REALTIME_SIO_LEAN_WEBSOCKET="false", REALTIME_SIO_HEAD_TIMEOUT=str(DEADLINE))
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    await dribble_until_closed(writer, reader, b"X-Slow: 1\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 20_000 + b"\r\n\r\n")
    answer = await read_until_closed(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


async def test_a_session_that_never_connects_a_namespace_is_closed(server_factory: Callable[..., ServerProcess]) -> None:
    """An Engine.IO WebSocket that never sends its Socket.IO CONNECT (the token check) is closed after
    CONNECT_TIMEOUT; a socket that connected in time stays open and served."""
    srv = server_factory(REALTIME_SIO_CONNECT_TIMEOUT="1")
    authenticated = await connected_socket(srv)
    silent, head = await RawWebSocket.open(srv.port)
    assert head.startswith(b"HTTP/1.1 101"), head
    await silent.engineio_open()
    assert await silent.close_code(timeout=WAIT) == 1000
    silent.close()
    assert await bad_input(srv, "connect_timeout") == 1
    authenticated.send_text('421["ping"]')
    assert await authenticated.receive_text() == '431["pong"]'
    authenticated.close()
