"""The client-facing error catalogue: one stable code per failure, its message, HTTP/subscribe status, retryable or not.

Codes are translated to Socket.IO ``connect_error`` data, ``subscription_error`` statuses and HTTP JSON bodies only
at the edges (``sio/namespace.py``, ``publish/http_api.py``); inner modules raise :class:`RealtimeError`.
``docs/errors.md`` lists the same table; a test keeps them in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """A documented failure a client or publisher can see."""

    code: str
    status: int  # HTTP status, and the subscription_error status for channel failures
    message: str
    retryable: bool

    def payload(self, detail: str | None = None) -> dict[str, Any]:
        """The JSON object sent to clients: ``{code, message, retryable}`` (+ ``detail``)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message, "retryable": self.retryable}
        if detail:
            body["detail"] = detail
        return body


def _e(code: str, status: int, message: str, retryable: bool = False) -> ErrorCode:
    return ErrorCode(code, status, message, retryable)


# -- connect (token) failures: sent as connect_error data --------------------------------------------------------
TOKEN_EXPIRED = _e("token_expired", 401, "The token has expired; fetch a new one and reconnect.", True)
TOKEN_NOT_YET_VALID = _e("token_not_yet_valid", 401, "The token is not valid yet (nbf/iat in the future).", True)
TOKEN_BAD_SIGNATURE = _e("token_bad_signature", 401, "The token signature does not verify.")
TOKEN_BAD_ALGORITHM = _e("token_bad_algorithm", 401, "The token uses an algorithm this server does not accept.")
TOKEN_BAD_ISSUER = _e("token_bad_issuer", 401, "The token issuer (iss) is not the expected one.")
TOKEN_BAD_AUDIENCE = _e("token_bad_audience", 401, "The token audience (aud) is not the expected one.")
TOKEN_MALFORMED = _e("token_malformed", 401, "The token is not a well-formed JWT.")
TOKEN_TOO_LARGE = _e("token_too_large", 401, "The token is longer than the server accepts.")
TOKEN_MISSING_CLAIM = _e("token_missing_claim", 401, "The token lacks a required claim (exp or the user id claim).")
TOKENS_DISABLED = _e("tokens_disabled", 401, "This server has no JWT key configured; connect without a token.")
POSITIONS_INVALID = _e("positions_invalid", 400, "Recovery positions are malformed or too many.")
SERVER_DRAINING = _e("server_draining", 503, "This instance is shutting down; reconnect to another one.", True)
SERVER_BUSY = _e("server_busy", 503, "This instance is at capacity right now; retry shortly.", True)

# -- subscribe failures: subscription_error(channel, status) ----------------------------------------------------
CHANNEL_INVALID = _e("channel_invalid", 400, "Channel name missing, too long or with forbidden characters.")
PAYLOAD_INVALID = _e("payload_invalid", 400, "Expected an object payload like {\"channel\": \"name\"}.")
CHANNEL_FORBIDDEN = _e("channel_forbidden", 403, "Not authorised for this channel.")
TOO_MANY_SUBSCRIPTIONS = _e("too_many_subscriptions", 429, "This socket has joined too many channels.", True)
RATE_LIMITED = _e("rate_limited", 429, "Too many subscribe requests; slow down.", True)
PRESENCE_UNAVAILABLE = _e("presence_unavailable", 503, "Presence is unavailable right now (Redis down); retry.", True)
AUTH_UNAVAILABLE = _e("auth_unavailable", 0, "The authorisation endpoint could not be reached.", True)

# -- HTTP publish API -------------------------------------------------------------------------------------------
API_UNAUTHORIZED = _e("unauthorized", 401, "Missing or wrong API key.")
API_SIGNATURE_INVALID = _e("signature_invalid", 401, "Authentication signature invalid.")
API_TIMESTAMP_EXPIRED = _e("timestamp_expired", 401, "auth_timestamp is more than 600 s from server time.")
API_BODY_INVALID = _e("body_invalid", 400, "The request body is not valid.")
API_EVENT_RESERVED = _e(
    "event_reserved",
    422,
    "This event name is reserved by Socket.IO clients (connect, connect_error, disconnect, disconnecting, "
    "newListener, removeListener).",
)
API_PAYLOAD_TOO_LARGE = _e("payload_too_large", 413, "The request body is larger than the server accepts.")
API_UNKNOWN_APP = _e("unknown_app", 404, "Unknown app id.")
API_NOT_PRESENCE = _e("not_presence_channel", 400, "User list is only possible for presence channels.")
API_UNAVAILABLE = _e("unavailable", 503, "The event cannot be delivered reliably right now; retry.", True)

# -- HTTP requests before any route (engine/upgrade_router.py, request_bodies.py): deadlines and limits ------------
HEAD_TOO_LARGE = _e("head_too_large", 431, "The request head (request line and headers) is larger than the server accepts.")
WEBSOCKET_VERSION = _e("websocket_version_unsupported", 426, "Only WebSocket version 13 (RFC 6455) is served.")
REQUEST_TIMEOUT = _e("request_timeout", 408, "The request body did not arrive in full within the server's deadline.", True)

# -- dashboard ---------------------------------------------------------------------------------------------------
DASHBOARD_UNAUTHORIZED = _e(
    "dashboard_unauthorized", 401, "Sign in at /dashboard, or use HTTP Basic with the dashboard token as password."
)

CATALOGUE: tuple[ErrorCode, ...] = tuple(v for v in globals().values() if isinstance(v, ErrorCode))


class RealtimeError(Exception):
    """Root of the package's expected failures; carries one catalogue entry."""

    def __init__(self, error: ErrorCode, detail: str | None = None) -> None:
        super().__init__(f"{error.code}: {detail or error.message}")
        self.error = error
        self.detail = detail
