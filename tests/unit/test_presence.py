"""Unit tests of in-memory presence (publish/presence.py): per-user de-duplication and its announcements."""

from __future__ import annotations

from realtime_sio.members import Member
from realtime_sio.publish.presence import JOINING, LEAVING, LocalPresence


class Heard:
    """Records what a store announces: (channel, event, user id, the socket left out)."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str, str | int, str]] = []

    async def __call__(self, channel: str, event: str, member: Member, except_sid: str) -> None:
        self.said.append((channel, event, member.user_id, except_sid))


async def test_first_and_last_socket_of_a_user() -> None:
    """joining only on a user's first socket, leaving only on the last; ids 1 and "1" are one user."""
    heard = Heard()
    p = LocalPresence(heard)
    assert (await p.join("presence-a", "s1", Member(1, {"n": "A"}))).first_for_user
    assert not (await p.join("presence-a", "s2", Member("1", {"n": "A"}))).first_for_user
    assert len(await p.members("presence-a")) == 1
    assert not (await p.leave("presence-a", "s1")).last_for_user
    result = await p.leave("presence-a", "s2")
    assert result.last_for_user and result.member is not None and result.member.user_info == {"n": "A"}
    assert await p.channels() == {}
    assert heard.said == [("presence-a", JOINING, 1, "s1"), ("presence-a", LEAVING, "1", "s2")]


async def test_a_socket_that_joins_again_as_another_user_leaves_as_the_first() -> None:
    """The same socket re-joined as someone else: the first user leaves (announced), the second joins."""
    heard = Heard()
    p = LocalPresence(heard)
    await p.join("presence-a", "s1", Member(1, None))
    await p.join("presence-a", "s1", Member(2, None))
    assert await p.members("presence-a") == [Member(2, None)]
    assert heard.said == [("presence-a", JOINING, 1, "s1"), ("presence-a", LEAVING, 1, "s1"), ("presence-a", JOINING, 2, "s1")]


async def test_leave_unknown_socket_is_harmless() -> None:
    """Leaving a channel the socket never joined returns no member and announces nothing (the upstream crash case)."""
    heard = Heard()
    result = await LocalPresence(heard).leave("presence-a", "nobody")
    assert result.member is None and not result.last_for_user
    assert heard.said == []
