"""Event names a publisher may not emit: the ones Socket.IO clients reserve for their own lifecycle.

socket.io-client (``RESERVED_EVENTS`` in ``socket.ts``) and python-socketio treat these as the connection's own
events: an event published as ``connect`` reached clients as their ``connect`` (issue 11, item 6). The HTTP APIs
answer ``event_reserved`` (422); Laravel's Redis broadcasts with such a name are dropped and counted.
"""

from __future__ import annotations

RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})


def is_reserved(event: str) -> bool:
    """True for a name clients reserve (exact, case-sensitive match, as the clients compare)."""
    return event in RESERVED_EVENTS
