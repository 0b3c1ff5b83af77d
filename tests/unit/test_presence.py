"""Unit tests of in-memory presence (publish/presence.py): per-user de-duplication."""

from __future__ import annotations

from realtime_sio.members import Member
from realtime_sio.publish.presence import LocalPresence


async def test_first_and_last_socket_of_a_user() -> None:
    """joining only on a user's first socket, leaving only on the last; ids 1 and "1" are one user."""
    p = LocalPresence()
    assert (await p.join("presence-a", "s1", Member(1, {"n": "A"}))).first_for_user
    assert not (await p.join("presence-a", "s2", Member("1", {"n": "A"}))).first_for_user
    assert len(await p.members("presence-a")) == 1
    assert not (await p.leave("presence-a", "s1")).last_for_user
    result = await p.leave("presence-a", "s2")
    assert result.last_for_user and result.member is not None and result.member.user_info == {"n": "A"}
    assert await p.channels() == {}


async def test_leave_unknown_socket_is_harmless() -> None:
    """Leaving a channel the socket never joined returns no member (the upstream crash case)."""
    result = await LocalPresence().leave("presence-a", "nobody")
    assert result.member is None and not result.last_for_user
