"""The seam for channel decisions made outside the server: an :class:`Authorizer` answers with a :class:`DelegatedAnswer`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from realtime_sio.auth.tokens import Identity
from realtime_sio.members import Member


@dataclass(frozen=True)
class DelegatedAnswer:
    """What the app's /broadcasting/auth said: HTTP status (0 = unreachable) and presence member data."""

    status: int
    member: Member | None = None


class Authorizer(Protocol):
    """Delegates a channel decision to Laravel (``auth.laravel``)."""

    async def authorize(
        self, channel: str, socket_id: str, headers: Mapping[str, str], cookie: str | None, identity: Identity
    ) -> DelegatedAnswer: ...
