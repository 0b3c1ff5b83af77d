"""A client that stops reading is dropped once its send buffer is full; memory stays bounded, others are served."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.support import API_KEY, Client, eventually


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{url}/metrics")).text()
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), 0.0)


async def test_stalled_reader_is_disconnected(server_factory: Any, clients: Any) -> None:
    """A raw WebSocket client that never reads is dropped as a slow consumer; a normal client gets every event."""
    srv = server_factory(REALTIME_SIO_MAX_BUFFERED_BYTES="262144")
    good: Client = clients(srv.url)
    await good.connect()
    await good.joined("firehose")
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            f"{srv.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket", max_msg_size=0
        )
        await ws.receive()  # engine.io OPEN
        await ws.send_str("40")
        await ws.receive()  # socket.io CONNECT
        await ws.send_str("42" + json.dumps(["subscribe", {"channel": "firehose"}]))
        # From here on the stalled client never reads again.
        payload = "x" * 60_000
        sent = 0
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as pub:
            for n in range(300):
                r = await pub.post(f"{srv.url}/api/v1/events", json={"channel": "firehose", "event": "Big", "data": {"n": n, "p": payload}})
                assert r.status == 200
                sent += 1
                if await metric(srv.url, "realtime_sio_slow_consumer_disconnects_total") >= 1:
                    break
                await asyncio.sleep(0)  # let the good client's reader run
        assert await metric(srv.url, "realtime_sio_slow_consumer_disconnects_total") >= 1
        await ws.close()
    await eventually(lambda: len(good.named("Big")) == sent, timeout=30, what="good client got every event")
    assert [a[1]["n"] for a in good.named("Big")] == list(range(sent))
    await eventually(lambda: True)
    assert "slow_consumer_disconnected" in srv.logs()
