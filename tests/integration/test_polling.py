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
