"""Channel names: their kind (public / private / presence) and validation of names sent by clients."""

from __future__ import annotations

import re
from typing import Literal

ChannelKind = Literal["public", "private", "presence"]

# Pusher's channel-name alphabet ([A-Za-z0-9_\-=@,.;]) plus what Laravel channel classes produce (backslash never;
# `App.Models.User.1` uses dots). Anything else is refused before any rule is consulted.
_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;:]+")


def kind_of(channel: str) -> ChannelKind:
    """The channel's kind from its prefix: ``presence-`` → presence, ``private-`` → private, else public."""
    if channel.startswith("presence-"):
        return "presence"
    if channel.startswith("private-"):
        return "private"
    return "public"


def is_valid_name(channel: object, max_length: int) -> bool:
    """True for a non-empty string of allowed characters no longer than ``max_length``.

    The alphabet refuses names starting with the reserved ``#``, but NOT Socket.IO sids: a sid (20 characters of
    ``A-Za-z0-9_-``) is a valid name here. A socket's own sid room is refused where sockets join rooms
    (``sio/namespace.py`` ``_is_sid_room``), against the live sids, not by shape (issue 11, item 2).
    """
    return isinstance(channel, str) and 0 < len(channel) <= max_length and _NAME.fullmatch(channel) is not None
