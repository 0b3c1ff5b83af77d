"""Presence channels and whispers against a real server with several users and sockets."""

from __future__ import annotations

import json
from typing import Any

from tests.support import Client, ServerProcess, eventually, token


def users(members: list[dict[str, Any]]) -> list[Any]:
    return sorted(m["user_id"] for m in members)


async def test_presence_two_users_three_sockets(server: ServerProcess, clients: Any) -> None:
    """Joining is announced on a user's first socket only, leaving on their last; here() lists each user once."""
    channel = "presence-chat.77"
    alice1: Client = clients(server.url)
    await alice1.connect(auth={"token": token(1, name="Alice")})
    await alice1.joined(channel)
    (here,) = await alice1.wait_for("presence:subscribed")
    assert here[0] == channel and [m["user_info"] for m in here[1]] == [{"id": 1, "name": "Alice"}]

    bob: Client = clients(server.url)
    await bob.connect(auth={"token": token(2, name="Bob")})
    await bob.joined(channel)
    (bob_here,) = await bob.wait_for("presence:subscribed")
    assert users(bob_here[1]) == [1, 2]
    (joining,) = await alice1.wait_for("presence:joining")
    assert joining == (channel, {"user_id": 2, "user_info": {"id": 2, "name": "Bob"}})

    alice2: Client = clients(server.url)  # a second tab of Alice: one member, no announcement
    await alice2.connect(auth={"token": token(1, name="Alice")})
    await alice2.joined(channel)
    (tab_here,) = await alice2.wait_for("presence:subscribed")
    assert users(tab_here[1]) == [1, 2]
    await bob.sio.call("ping")
    assert bob.named("presence:joining") == []

    await alice1.close()  # Alice still has a tab open: no leaving
    await bob.sio.call("ping")
    await alice2.sio.call("ping")
    assert bob.named("presence:leaving") == []

    await alice2.sio.emit("unsubscribe", {"channel": channel})  # her last socket leaves
    (leaving,) = await bob.wait_for("presence:leaving")
    assert leaving == (channel, {"user_id": 1, "user_info": {"id": 1, "name": "Alice"}})


async def test_presence_leaving_on_disconnect(server: ServerProcess, clients: Any) -> None:
    """A user's last socket disconnecting sends presence:leaving to the others."""
    channel = "presence-chat.78"
    a: Client = clients(server.url)
    await a.connect(auth={"token": token(11)})
    await a.joined(channel)
    b: Client = clients(server.url)
    await b.connect(auth={"token": token(12)})
    await b.joined(channel)
    await a.wait_for("presence:joining")
    await b.close()
    (leaving,) = await a.wait_for("presence:leaving")
    assert leaving[1]["user_id"] == 12


async def test_resubscribe_is_idempotent(server: ServerProcess, clients: Any) -> None:
    """Subscribing twice to a presence channel neither duplicates the member nor re-announces it."""
    channel = "presence-chat.79"
    a: Client = clients(server.url)
    await a.connect(auth={"token": token(21)})
    await a.joined(channel)
    b: Client = clients(server.url)
    await b.connect(auth={"token": token(22)})
    await b.joined(channel)
    await b.joined(channel)
    await a.wait_for("presence:joining")
    await a.sio.call("ping")
    assert len(a.named("presence:joining")) == 1
    assert len(b.named("presence:subscribed")) == 1


async def test_whisper_reaches_others_not_sender(server: ServerProcess, clients: Any) -> None:
    """A client-* event on a joined private channel reaches the other members, not the sender."""
    channel = "private-role.team"
    a: Client = clients(server.url)
    await a.connect(auth={"token": token(31, ["team"])})
    b: Client = clients(server.url)
    await b.connect(auth={"token": token(32, ["team"])})
    await a.sio.emit("client event", {"channel": channel, "event": "client-typing", "data": {"who": 31}})
    (typing,) = await b.wait_for("client-typing")
    assert typing == (channel, {"who": 31})
    # The Echo wire may send the payload as a JSON string too.
    await b.sio.emit("client event", json.dumps({"channel": channel, "event": "client-typing", "data": {"who": 32}}))
    (back,) = await a.wait_for("client-typing")
    assert back == (channel, {"who": 32})
    await a.sio.call("ping")
    assert len(a.named("client-typing")) == 1 and len(b.named("client-typing")) == 1


async def test_whisper_refusals(server: ServerProcess, clients: Any) -> None:
    """Whispers that are not client-*, on public channels, or on channels the sender has not joined are dropped."""
    listener: Client = clients(server.url)
    await listener.connect(auth={"token": token(41, ["team"])})
    await listener.joined("news")
    outsider: Client = clients(server.url)
    await outsider.connect(auth={"token": token(42)})
    await outsider.joined("news")
    attempts = [
        {"channel": "private-role.team", "event": "client-x", "data": 1},  # not a member
        {"channel": "news", "event": "client-x", "data": 1},  # public channel
        {"channel": "private-user.42", "event": "App\\Events\\Forged", "data": 1},  # not client-*
        {"channel": "private-user.42", "event": 5, "data": 1},
        "{not json",
        None,
    ]
    for attempt in attempts:
        await outsider.sio.emit("client event", attempt)
    assert await outsider.sio.call("ping") == "pong"
    await listener.sio.call("ping")
    assert [e for e, _ in listener.events if e.startswith("client-") or e == "App\\Events\\Forged"] == []


async def test_presence_requires_authentication(server: ServerProcess, clients: Any) -> None:
    """Anonymous sockets are refused on presence channels and appear in nobody's member list."""
    member: Client = clients(server.url)
    await member.connect(auth={"token": token(51)})
    await member.joined("presence-chat.80")
    anon: Client = clients(server.url)
    await anon.connect()
    ack = await anon.sio.call("subscribe", {"channel": "presence-chat.80"})
    assert ack["status"] == 403
    await member.sio.call("ping")
    assert member.named("presence:joining") == []
    await eventually(lambda: len(member.named("presence:subscribed")) == 1)
