"""Missed-message recovery on one node (in-memory history): replay in order, exactly once, then live; reset signal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_channels import post_event
from tests.support import Client, ServerProcess, eventually, token


def positions_of(client: Client, event: str) -> list[str]:
    return [args[2]["position"] for args in client.named(event)]


async def test_reconnect_with_positions_replays_missed_events(server: ServerProcess, clients: Any) -> None:
    """A client that saw event 0 and reconnects with that position gets events 1..20 in order, once, then live."""
    first: Client = clients(server.url)
    await first.connect()
    await first.joined("feed-r1")
    await post_event(server.url, {"channel": "feed-r1", "event": "Tick", "data": 0})
    (seen,) = await first.wait_for("Tick")
    last = seen[2]["position"]
    await first.close()
    for n in range(1, 21):
        await post_event(server.url, {"channel": "feed-r1", "event": "Tick", "data": n})
    again: Client = clients(server.url)
    await again.connect(auth={"positions": {"feed-r1": last}})
    await again.joined("feed-r1")
    await post_event(server.url, {"channel": "feed-r1", "event": "Tick", "data": 21})
    got = await again.wait_for("Tick", 21)
    assert [a[1] for a in got] == list(range(1, 22))
    assert all(a[2].get("recovered") for a in got[:20]) and not got[20][2].get("recovered")
    await again.sio.call("ping")
    assert len(again.named("Tick")) == 21


async def test_subscribe_since_field(server: ServerProcess, clients: Any) -> None:
    """`subscribe {channel, since}` replays the same way as connect-time positions."""
    a: Client = clients(server.url)
    await a.connect()
    await a.joined("feed-r2")
    await post_event(server.url, {"channel": "feed-r2", "event": "E", "data": "a"})
    (args,) = await a.wait_for("E")
    await post_event(server.url, {"channel": "feed-r2", "event": "E", "data": "b"})
    b: Client = clients(server.url)
    await b.connect()
    await b.joined("feed-r2", since=args[2]["position"])
    (replayed,) = await b.wait_for("E")
    assert replayed[1] == "b" and replayed[2]["recovered"] is True


async def test_history_gone_sends_reset(server_factory: Any, clients: Any) -> None:
    """When history no longer reaches back, the client gets recovery:reset(channel, {code}) instead of a partial replay."""
    srv = server_factory(REALTIME_SIO_HISTORY_SIZE="5")
    a: Client = clients(srv.url)
    await a.connect()
    await a.joined("feed-r3")
    await post_event(srv.url, {"channel": "feed-r3", "event": "E", "data": 0})
    (args,) = await a.wait_for("E")
    await a.close()
    for n in range(1, 12):
        await post_event(srv.url, {"channel": "feed-r3", "event": "E", "data": n})
    b: Client = clients(srv.url)
    await b.connect(auth={"positions": {"feed-r3": args[2]["position"]}})
    await b.joined("feed-r3")
    (reset,) = await b.wait_for("recovery:reset")
    assert reset[0] == "feed-r3" and reset[1]["code"] == "history_unavailable"
    assert b.named("E") == []


async def test_replay_respects_to_others(server: ServerProcess, clients: Any) -> None:
    """An event published with socket_id excluded is not replayed to that same socket id (it never should see it)."""
    a: Client = clients(server.url)
    await a.connect()
    await a.joined("feed-r4")
    await post_event(server.url, {"channel": "feed-r4", "event": "E", "data": 0})
    (args,) = await a.wait_for("E")
    await post_event(server.url, {"channel": "feed-r4", "event": "E", "data": 1, "socket_id": a.sid})
    await post_event(server.url, {"channel": "feed-r4", "event": "E", "data": 2})
    await eventually(lambda: len(a.named("E")) == 2)
    await a.sio.call("subscribe", {"channel": "feed-r4", "since": args[2]["position"]})  # already joined: no-op
    await a.sio.call("ping")
    assert [x[1] for x in a.named("E")] == [0, 2]


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ({"positions": ["feed", "1-0"]}, "positions_invalid"),
        ({"positions": {"feed": "not-a-position"}}, "positions_invalid"),
        ({"positions": {"feed": 12}}, "positions_invalid"),
        ({"positions": {f"c{i}": "1-0" for i in range(101)}}, "positions_invalid"),
    ],
    ids=["list", "malformed", "number", "too many"],
)
async def test_bad_positions_are_refused(server: ServerProcess, clients: Any, auth: dict[str, Any], code: str) -> None:
    """Malformed or oversized recovery positions are refused at connect with positions_invalid."""
    import socketio

    c: Client = clients(server.url)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await c.connect(auth=auth)
    assert c.connect_errors[-1]["data"]["code"] == code


async def test_positions_for_forbidden_channels_leak_nothing(server: ServerProcess, clients: Any) -> None:
    """Positions for a private channel the client may not join replay nothing; subscribe is refused with 403."""
    owner: Client = clients(server.url)
    await owner.connect(auth={"token": token(61)})
    await post_event(server.url, {"channel": "private-user.61", "event": "Secret", "data": 1})
    (args,) = await owner.wait_for("Secret")
    await post_event(server.url, {"channel": "private-user.61", "event": "Secret", "data": 2})
    spy: Client = clients(server.url)
    await spy.connect(auth={"token": token(62), "positions": {"private-user.61": "0-0"}})
    ack = await spy.sio.call("subscribe", {"channel": "private-user.61", "since": args[2]["position"]})
    assert ack["status"] == 403
    await spy.sio.call("ping")
    assert spy.named("Secret") == []


async def test_future_position_replays_nothing(server: ServerProcess, clients: Any) -> None:
    """A forged position in the future replays nothing and the client still gets live events."""
    c: Client = clients(server.url)
    await c.connect(auth={"positions": {"feed-r5": "99999999999999-0"}})
    await c.joined("feed-r5")
    await post_event(server.url, {"channel": "feed-r5", "event": "E", "data": "live"})
    (args,) = await c.wait_for("E")
    assert args[1] == "live" and "recovered" not in args[2]
