"""Missed-message recovery: replay a channel's history after a client's last position, exactly once and in order.

While a socket's history is replayed, live events for that channel are held at a gate (``Broadcaster.gates``) and
released afterwards, skipping what the replay already sent; so the client sees every event once, in position order,
before new ones. When history no longer reaches back it gets ``recovery:reset`` and should reload its state.
"""

from __future__ import annotations

from realtime_sio import logs
from realtime_sio.publish.broadcaster import Broadcaster, Message
from realtime_sio.publish.history import parse_position

log = logs.get(__name__)

RESET_EVENT = "recovery:reset"


class Recovery:
    """Opens gates and replays history for one socket and channel at a time."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster

    def open_gate(self, sid: str, channel: str) -> list[Message]:
        """Hold live events of ``channel`` for ``sid`` from now on; returns the buffer they collect in."""
        held: list[Message] = []
        self._broadcaster.gates.setdefault(channel, {})[sid] = held
        return held

    def _close_gate(self, sid: str, channel: str) -> None:
        gated = self._broadcaster.gates.get(channel)
        if gated is not None:
            gated.pop(sid, None)
            if not gated:
                del self._broadcaster.gates[channel]

    def forget(self, sid: str) -> None:
        """Drop every gate of a socket that went away mid-recovery."""
        for channel in [c for c, g in self._broadcaster.gates.items() if sid in g]:
            self._close_gate(sid, channel)

    async def recover(self, sid: str, channel: str, since: tuple[int, int], held: list[Message]) -> None:
        """Replay ``channel`` after ``since`` to ``sid``, then release the gate; returns when the socket is live."""
        try:
            entries = await self._broadcaster.history_since(channel, since)
        except Exception:  # noqa: BLE001 - history unreachable (Redis down): the client must reload, not hang
            log.warning("recovery_history_unavailable", sid=sid, channel=channel)
            entries = None
        last = since
        if entries is None:
            self._broadcaster.to_socket(sid, RESET_EVENT, channel, {"code": "history_unavailable", "since": _fmt(since)})
            log.info("recovery_reset", sid=sid, channel=channel)
        else:
            for entry in entries:
                if entry.except_sid != sid:
                    self._broadcaster.to_socket(sid, entry.event, channel, entry.data, {"position": entry.position, "recovered": True})
                last = parse_position(entry.position) or last
            log.info("recovery_replayed", sid=sid, channel=channel, events=len(entries))
        # No await from here on: release what the gate held, skipping positions the replay already covered.
        self._close_gate(sid, channel)
        for message in held:
            position = parse_position(message.position) if message.position is not None else None
            if position is not None and position <= last:
                continue
            if message.except_sid == sid:
                continue
            args: tuple[object, ...] = (channel, message.data)
            if message.position is not None:
                args = (channel, message.data, {"position": message.position})
            self._broadcaster.to_socket(sid, message.event, *args)


def _fmt(position: tuple[int, int]) -> str:
    return f"{position[0]}-{position[1]}"
