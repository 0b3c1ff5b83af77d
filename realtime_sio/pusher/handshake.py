"""Whether a WebSocket upgrade to ``/app/{key}`` may become a Pusher connection; pure, no I/O.

pusher-js 8 connects to ``/app/KEY?protocol=7&client=js&version=8.x&flash=false``. Checked in Reverb's order: the
app key (unknown → 4001), the protocol version (not 5-7 → 4007; absent is accepted, as Reverb does), the
``Origin`` (→ 4009). Origins follow the app's own ``allowed_origins`` (``[[apps]]`` in the config file, as Reverb's
per-app setting) or, when it has none, ``CORS_ORIGINS``, the Socket.IO rule: ``*`` admits any; a listed entry admits
that origin (``https://app.example.com``) or, Reverb-style, a host pattern (``app.example.com``,
``*.example.com``); a page on the server's own host and a client sending no ``Origin`` (not a browser) are always
admitted.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from realtime_sio.pusher import messages
from realtime_sio.pusher.messages import PusherError
from realtime_sio.settings import PusherApp

PATH_PREFIX = "/app/"
PROTOCOLS = frozenset({"5", "6", "7"})


def app_key(path: str) -> str | None:
    """The key in ``/app/{key}``, or None when the path is not a Pusher endpoint."""
    if not path.startswith(PATH_PREFIX):
        return None
    key = path[len(PATH_PREFIX) :]
    return key if key and "/" not in key and len(key) <= 200 else None


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """The ``CORS_ORIGINS`` rule for a WebSocket's ``Origin`` (see the module docstring)."""
    if origin is None or "*" in allowed:
        return True
    try:
        origin_host = urlsplit(origin).netloc.lower()
    except ValueError:
        return False
    if origin_host and host is not None and origin_host == host.lower():
        return True
    bare = origin_host.rpartition("@")[2].partition(":")[0]
    for entry in allowed:
        entry = entry.lower().rstrip("/")
        if entry == origin.lower().rstrip("/"):
            return True
        if "://" not in entry and (fnmatch.fnmatchcase(bare, entry) or fnmatch.fnmatchcase(origin_host, entry)):
            return True
    return False


def check(
    environ: Mapping[str, Any], apps: Mapping[str, PusherApp], allowed_origins: tuple[str, ...]
) -> PusherApp | PusherError:
    """The app a Pusher upgrade connects to, or the error to send before closing with its code."""
    app = apps.get(app_key(str(environ.get("PATH_INFO", ""))) or "")
    if app is None:
        return messages.UNKNOWN_APP
    protocol = parse_qs(str(environ.get("QUERY_STRING", ""))).get("protocol")
    if protocol is not None and protocol[-1] not in PROTOCOLS:
        return messages.UNSUPPORTED_PROTOCOL
    if not origin_allowed(environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST"), app.allowed_origins or allowed_origins):
        return messages.ORIGIN_NOT_ALLOWED
    return app
