"""Reserved event names (event_names.py)."""

from __future__ import annotations

import pytest

from realtime_sio.event_names import RESERVED_EVENTS, is_reserved


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_client_lifecycle_names_are_reserved(name: str) -> None:
    """socket.io-client's reserved names are refused."""
    assert is_reserved(name)


@pytest.mark.parametrize("name", ["Connect", "connected", "App\\Events\\Connect", "client-connect", "message", "ping"])
def test_other_names_are_not(name: str) -> None:
    """Only exact, case-sensitive matches are reserved (the clients compare that way)."""
    assert not is_reserved(name)
