"""The body middleware (request_bodies.py) on a real in-process aiohttp server: deadline, early 413, body handed on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from realtime_sio import request_bodies

LIMIT = 1000
TIMEOUT = 0.3
WAIT = 10.0  # the test's own deadline for the server to act


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestServer, list[tuple[str, str]]]]:
    """An app with the middleware (limit 1000 bytes, 0.3 s) whose handler echoes the body's length, and one that reads
    it as engineio does; refusals recorded. Lingering after an early answer is as short as the deadline, as in app.py."""
    refused: list[tuple[str, str]] = []

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    async def engineio_like(request: web.Request) -> web.Response:
        body = request_bodies.engineio_input(request)
        return web.Response(body=b"|".join([await body.read(3), await body.read()]))

    app = web.Application(middlewares=[request_bodies.middleware(TIMEOUT, lambda _: LIMIT, lambda r, d: refused.append((r, d)))])
    app.router.add_post("/", echo)
    app.router.add_post("/eio", engineio_like)
    server = TestServer(app)
    await server.start_server(lingering_time=TIMEOUT)
    yield server, refused
    await server.close()


async def exchange(server: TestServer, request: bytes, dribble: bytes = b"") -> bytes:
    """Send a raw request (then ``dribble`` a byte every 50 ms) and return what the server answered until it closed."""
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)

    async def feed() -> None:
        try:
            for byte in dribble:
                writer.write(bytes((byte,)))
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, OSError):
            pass

    feeder = asyncio.create_task(feed())
    try:
        return await asyncio.wait_for(reader.read(), WAIT)
    finally:
        feeder.cancel()
        writer.close()


async def test_a_body_within_the_limit_reaches_the_handler(served: tuple[TestServer, list[tuple[str, str]]]) -> None:
    """The handler reads the whole body the middleware read (request.read() returns its copy)."""
    server, refused = served
    answer = await exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n5"), answer
    assert refused == []


async def test_an_announced_oversize_body_is_refused_before_it_is_sent(served: tuple[TestServer, list[tuple[str, str]]]) -> None:
    """A Content-Length over the limit gets 413 payload_too_large with no body byte sent."""
    server, refused = served
    answer = await exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and b'"payload_too_large"' in answer, answer
    assert [reason for reason, _ in refused] == ["payload_too_large"]


async def test_a_slow_body_gets_408_after_the_deadline(served: tuple[TestServer, list[tuple[str, str]]]) -> None:
    """A body still incomplete after the deadline gets 408 request_timeout and the connection ends."""
    server, refused = served
    answer = await exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n", dribble=b"x" * 900)
    assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer, answer
    assert [reason for reason, _ in refused] == ["request_timeout"]


async def test_engineio_reads_the_cached_body(served: tuple[TestServer, list[tuple[str, str]]]) -> None:
    """engineio_input(request).read(n) gives the body already read, cut at n like a stream read."""
    server, _ = served
    answer = await exchange(server, b"POST /eio HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nhel|hello"), answer
