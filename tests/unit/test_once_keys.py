"""Unit tests of the single node's once-only keys (publish/broadcaster.py OnceKeys): idempotency within a window."""

from __future__ import annotations

from realtime_sio.publish.broadcaster import OnceKeys


def test_a_key_is_claimed_once_within_its_ttl_and_again_after_it() -> None:
    """The second claim of a key inside the window is refused; after the window it is a new claim."""
    now = [100.0]
    keys = OnceKeys(10, clock=lambda: now[0])
    assert keys.claim("a") and keys.claim("b") and not keys.claim("a")
    now[0] += 10.5
    assert keys.claim("a") and not keys.claim("a")
    assert keys.claim("b")  # b expired with the same pass
