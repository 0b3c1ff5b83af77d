"""Engine.IO long-polling against a real server: every answer to a poll is an Engine.IO payload (issue 11 item 10)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.support import ServerProcess

ATTEMPTS = 10  # the parked poll and the closing POST travel on two connections; retry when the POST won the race


async def open_session(http: aiohttp.ClientSession, url: str) -> str:
    """Open an Engine.IO polling session, connect the Socket.IO namespace and read its CONNECT; returns the poll URL."""
    opened = await (await http.get(f"{url}/socket.io/?EIO=4&transport=polling")).text()
    poll = f"{url}/socket.io/?EIO=4&transport=polling&sid={json.loads(opened[1:])['sid']}"
    assert (await http.post(poll, data="40")).status == 200
    assert (await (await http.get(poll)).text()).startswith("40{")
    return poll


async def test_a_poll_woken_because_its_session_closed_gets_a_noop_packet(server: ServerProcess) -> None:
    """A long-poll parked when the client closes its session (CLOSE packet on a POST) is answered 200 with NOOP "6",
    as the reference server does, never with an empty body (which is no Engine.IO payload)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for _ in range(ATTEMPTS):
            poll = await open_session(http, server.url)
            parked = asyncio.create_task(http.get(poll))
            await asyncio.sleep(0)  # let the poll's request go out first
            closed = await http.post(poll, data="1")
            assert closed.status == 200
            woken = await asyncio.wait_for(parked, 30)
            if woken.status == 400:
                continue  # the CLOSE arrived before the poll was parked: the session was already gone; try again
            assert woken.status == 200
            assert await woken.text() == "6"
            return
        raise AssertionError(f"the poll never got parked before the CLOSE in {ATTEMPTS} attempts")


async def test_a_large_polling_post_arriving_in_pieces_is_read_whole(server: ServerProcess) -> None:
    """A polling POST of ~90 KB sent in small pieces is read whole before Engine.IO decodes it (engineio's
    ``wsgi.input.read(n)`` on aiohttp's stream returned only the bytes buffered so far), and its event is answered."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        poll = await open_session(http, server.url)
    body = ("421" + json.dumps(["ping", "x" * 90_000])).encode()
    path = poll.removeprefix(server.url)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    for i in range(0, len(body), 8192):
        writer.write(body[i : i + 8192])
        await writer.drain()
        await asyncio.sleep(0)  # separate reads on the server's side
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        assert await (await http.get(poll)).text() == '431["pong"]'
