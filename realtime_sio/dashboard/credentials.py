"""Dashboard credentials, pure: HTTP Basic checks and the session cookie (an expiring HMAC of the admin token).

The cookie never holds the token itself: its value is ``<expires>.<hex HMAC-SHA256(token, label + expires)>``, so a
leaked cookie does not reveal the token, expires by itself, and every cookie dies when the token is rotated. All
comparisons are constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Literal

COOKIE_NAME = "realtime_sio_dashboard"
SESSION_SECONDS = 12 * 3600
_LABEL = b"realtime_sio.dashboard.session.v1:"

Verdict = Literal["absent", "valid", "invalid"]
_EXPIRES = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() also accepts "²" and "١", which int() refuses


def _digest(token: str, expires: int) -> str:
    return hmac.new(token.encode(), _LABEL + str(expires).encode(), hashlib.sha256).hexdigest()


def _raw(text: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 to lone surrogates; encode them back instead of raising.
    return text.encode("utf-8", "surrogateescape")


def token_matches(candidate: str, token: str) -> bool:
    """True when ``candidate`` equals the admin token (constant-time); any string, never raises."""
    return hmac.compare_digest(_raw(candidate), _raw(token))


def mint_session(token: str, now: float, lifetime: int = SESSION_SECONDS) -> str:
    """The cookie value for a session that is valid until ``now + lifetime`` (wall-clock seconds)."""
    expires = int(now) + lifetime
    return f"{expires}.{_digest(token, expires)}"


def check_session(value: str | None, token: str, now: float) -> Verdict:
    """``absent`` without a cookie; ``valid`` for an unexpired cookie minted with ``token``; otherwise ``invalid``."""
    if not value:
        return "absent"
    expires_raw, _, digest = value.partition(".")
    if _EXPIRES.fullmatch(expires_raw) is None or not digest:
        return "invalid"
    expires = int(expires_raw)
    if not hmac.compare_digest(_raw(digest), _digest(token, expires).encode()):
        return "invalid"
    return "valid" if expires > now else "invalid"


def check_basic(header: str | None, token: str) -> Verdict:
    """``absent`` without an ``Authorization: Basic`` header; ``valid`` when its password is the token (any user)."""
    if not header or header[:6].lower() != "basic ":
        return "absent"
    try:
        # b64decode raises ValueError (not binascii.Error) for a str with non-ASCII characters ("Basic éé").
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return "invalid"
    _, sep, password = decoded.partition(":")
    if not sep:
        return "invalid"
    return "valid" if token_matches(password, token) else "invalid"


def combine(*verdicts: Verdict) -> Verdict:
    """One valid credential is enough; any presented but wrong credential, with none valid, is ``invalid``."""
    if "valid" in verdicts:
        return "valid"
    return "invalid" if "invalid" in verdicts else "absent"
