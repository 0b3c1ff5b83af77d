"""Bringing a socket that just joined a channel up to date: replay what it missed, or give it a position to keep.

While a socket's history is read, live events for that channel are held at a gate (``LocalDelivery.hold``) and
released afterwards in order, so the client sees every event once, in position order, before new ones.

- With a cursor (``since``, or ``auth.positions`` at connect): the events after it are replayed. When history no
  longer reaches back, the client gets ``recovery:reset(channel, {code: "history_unavailable", reason})`` and should
  reload that channel's state; ``reason`` says why (``trimmed``, ``expired``, ``epoch_changed``), and so does the log.
- Without one (a first subscribe, an automatic user room): the client gets ``recovery:position(channel, null,
  {position})``, the channel's current position, so it can recover the channel even before its first event.
- When history cannot be read right now (Redis busy or away) nothing is reset: the read is tried again while the
  socket waits, and if it still fails :class:`RecoveryDeferred` is raised and the caller asks the client to reconnect
  later with the same cursor (issue 14: a false "history unavailable" used to make clients drop positions whose
  history existed).
"""

from __future__ import annotations

import asyncio
import time

from redis.exceptions import RedisError

from realtime_sio import logs
from realtime_sio.metrics import Metrics
from realtime_sio.publish.broadcaster import Broadcaster, Message
from realtime_sio.publish.delivery import LocalDelivery
from realtime_sio.publish.history import Cursor, Entry, Unrecoverable, parse_position

log = logs.get(__name__)

RESET_EVENT = "recovery:reset"
POSITION_EVENT = "recovery:position"
RESET_CODE = "history_unavailable"
_UNREACHABLE = (RedisError, OSError, TimeoutError)
ATTEMPTS = 3  # history reads tried before the client is asked to reconnect (each may wait REDIS_POOL_TIMEOUT)
RETRY_PAUSE = 0.5  # seconds before the second read, twice that before the third


class RecoveryDeferred(Exception):
    """History could not be read now (Redis busy or unreachable): the client should come back with its cursor."""


class Recovery:
    """Opens gates, replays history and hands out positions, for one socket and channel at a time."""

    def __init__(self, broadcaster: Broadcaster, delivery: LocalDelivery, metrics: Metrics) -> None:
        self._broadcaster = broadcaster  # history and positions
        self._delivery = delivery  # gates, and what goes to one socket
        self._metrics = metrics
        # gated[sid] = channels with an open gate for that socket (so a disconnect does not scan every gate: during a
        # reconnect storm thousands are open at once)
        self._gated: dict[str, set[str]] = {}

    def open_gate(self, sid: str, channel: str) -> list[Message]:
        """Hold live events of ``channel`` for ``sid`` from now on; returns the buffer they collect in."""
        held = self._delivery.hold(channel, sid)
        self._gated.setdefault(sid, set()).add(channel)
        return held

    def close_gate(self, sid: str, channel: str, floor: tuple[int, int] | None = None) -> None:
        self._delivery.release(channel, sid, floor)
        channels = self._gated.get(sid)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self._gated[sid]

    def forget(self, sid: str) -> None:
        """Drop every gate and floor of a socket that went away (perhaps mid-recovery)."""
        for channel in list(self._gated.get(sid, ())):
            self.close_gate(sid, channel)
        self._delivery.forget(sid)

    async def settle(self, sid: str, channel: str, since: Cursor | None, held: list[Message]) -> str | None:
        """Replay after ``since`` (or hand out the current position), then release the gate; returns the position
        the socket now stands at (``None`` without history).

        A read that fails because Redis is busy or away is tried again (``ATTEMPTS`` in all, the socket staying
        connected and its live events held): asking a client to reconnect costs a whole new handshake, which under
        a reconnect storm feeds the overload that made the read fail. Only then :class:`RecoveryDeferred` is raised,
        with the gate closed.
        """
        cursor = since
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if cursor is not None:
                    replay = await self._broadcaster.history_since(channel, cursor)
                    if not isinstance(replay, Unrecoverable):
                        return self._replay(sid, channel, cursor, replay, held)
                    self._reset(sid, channel, cursor, replay.reason)
                    cursor = None  # reset once; what is left is handing out the current position
                position = await self._broadcaster.position(channel)
                break
            except _UNREACHABLE as exc:
                error = type(exc).__name__
                if attempt == ATTEMPTS or channel not in self._gated.get(sid, ()):
                    self.close_gate(sid, channel)
                    self._metrics.recoveries.labels(outcome="deferred", reason=error).inc()
                    raise RecoveryDeferred(error) from exc
                self._metrics.recoveries.labels(outcome="retried", reason=error).inc()
                await asyncio.sleep(RETRY_PAUSE * attempt)
                if channel not in self._gated.get(sid, ()):
                    return None  # the socket went away meanwhile (its gates were dropped)
        self._announce(sid, channel, position, held)
        return position

    def _replay(self, sid: str, channel: str, since: Cursor, entries: list[Entry], held: list[Message]) -> str:
        last, last_text = since.at, since.text
        for entry in entries:
            if entry.except_sid != sid:
                self._delivery.to_socket(sid, entry.event, channel, entry.data, {"position": entry.position, "recovered": True})
            last, last_text = parse_position(entry.position) or last, entry.position
        self._metrics.recoveries.labels(outcome="replayed", reason="ok").inc()
        log.debug("recovery_replayed", sid=sid, channel=channel, events=len(entries))
        # No await from here on: release what the gate held, skipping positions the replay already covered; the floor
        # keeps skipping them for live copies that reach this node after the gate (delivery.py). A cursor that names a
        # time still to come (forged: positions are Redis clock times) leaves no floor: live events must still come.
        self.close_gate(sid, channel, floor=last if entries or last[0] <= time.time() * 1000 else None)
        for message in held:
            position = parse_position(message.position) if message.position is not None else None
            if position is not None and position <= last:
                continue
            self._send(sid, message)
        return last_text

    def _reset(self, sid: str, channel: str, since: Cursor, reason: str) -> None:
        self._metrics.recoveries.labels(outcome="reset", reason=reason).inc()
        log.info("recovery_reset", sid=sid, channel=channel, reason=reason, since=since.text)
        self._delivery.to_socket(sid, RESET_EVENT, channel, {"code": RESET_CODE, "reason": reason, "since": since.text})

    def _announce(self, sid: str, channel: str, position: str | None, held: list[Message]) -> None:
        """Release the gate in order, with the position announced between the events at or before it and those after."""
        self.close_gate(sid, channel)
        at = parse_position(position) if position is not None else None
        announced = at is None
        for message in held:
            mine = parse_position(message.position) if message.position is not None else None
            if not announced and mine is not None and at is not None and mine > at:
                self._delivery.to_socket(sid, POSITION_EVENT, channel, None, {"position": position})
                announced = True
            self._send(sid, message)
        if not announced:
            self._delivery.to_socket(sid, POSITION_EVENT, channel, None, {"position": position})

    def _send(self, sid: str, message: Message) -> None:
        if message.except_sid == sid:
            return
        args: tuple[object, ...] = (message.channel, message.data)
        if message.position is not None:
            args = (message.channel, message.data, {"position": message.position})
        self._delivery.to_socket(sid, message.event, *args)
