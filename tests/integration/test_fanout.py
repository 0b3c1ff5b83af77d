"""Correctness of the lean fan-out: order per recipient, WebSocket and polling in one room, binary payloads, acks."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.support import API_KEY, Client, ServerProcess, token


async def test_mixed_transports_receive_every_event_in_order(server: ServerProcess, clients: Any) -> None:
    """WebSocket and long-polling members of one room each get 200 rapid events once, in publish order."""
    members: list[Client] = []
    for transports in (["websocket"], ["polling"], ["websocket"], ["polling"]):
        c = clients(server.url)
        await c.connect(transports=transports)
        await c.joined("mixed")
        members.append(c)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        sem = asyncio.Semaphore(1)  # publish strictly one after another: the order is defined

        async def publish(n: int) -> None:
            async with sem:
                r = await http.post(f"{server.url}/api/v1/events", json={"channel": "mixed", "event": "Seq", "data": n})
                assert r.status == 200

        for n in range(200):
            await publish(n)
    for c in members:
        got = await c.wait_for("Seq", 200, timeout=30)
        assert [a[1] for a in got] == list(range(200))
    for c in members:
        await c.sio.call("ping")
        assert len(c.named("Seq")) == 200


async def test_binary_whisper_payload(server: ServerProcess, clients: Any) -> None:
    """A whisper carrying bytes reaches the other member as bytes (binary attachments take the queued path)."""
    a: Client = clients(server.url)
    b: Client = clients(server.url)
    for c in (a, b):
        await c.connect(auth={"token": token(71, ["bin"])})
    blob = bytes(range(256)) * 4
    await a.sio.emit("client event", {"channel": "private-role.bin", "event": "client-blob", "data": {"raw": blob}})
    (args,) = await b.wait_for("client-blob")
    assert args[0] == "private-role.bin" and args[1] == {"raw": blob}


async def test_events_interleave_with_acks(server: ServerProcess, clients: Any) -> None:
    """Ack replies and broadcast frames share a connection without loss: every call gets its ack while events flow."""
    c: Client = clients(server.url)
    await c.connect()
    await c.joined("acks")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:

        async def publish() -> None:
            for n in range(100):
                await http.post(f"{server.url}/api/v1/events", json={"channel": "acks", "event": "A", "data": n})

        results = await asyncio.gather(publish(), *(c.sio.call("ping") for _ in range(50)))
    assert results[1:] == ["pong"] * 50
    got = await c.wait_for("A", 100)
    assert [a[1] for a in got] == list(range(100))
