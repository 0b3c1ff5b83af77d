"""Presence members: who a socket is in a presence channel, as Echo's ``here/joining/leaving`` callbacks see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Member:
    """What Echo's ``here/joining/leaving`` callbacks receive as ``user_info``, keyed by ``user_id``."""

    user_id: str | int
    user_info: Any

    def wire(self) -> dict[str, Any]:
        """The member object sent to clients (laravel-echo-server shape, without socket ids)."""
        return {"user_id": self.user_id, "user_info": self.user_info}
