"""The ``/dashboard`` routes and their guard: HTTP Basic (password = the admin token) or a login-form session cookie.

Only registered when ``REALTIME_SIO_DASHBOARD_TOKEN`` is set, so an unconfigured server answers 404. Without any
credential the page shows the login form; a wrong credential (Basic password, form token or cookie) is a 401.
The session cookie holds an expiring HMAC of the token (``dashboard/credentials.py``), never the token, and is
``HttpOnly; SameSite=Strict`` (``Secure`` on HTTPS). Every response forbids framing, caching and foreign scripts.
"""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from urllib.parse import parse_qs

from aiohttp import web

from realtime_sio import errors, logs
from realtime_sio.dashboard import credentials
from realtime_sio.dashboard.feed import Feed
from realtime_sio.dashboard.stream import Streams

log = logs.get(__name__)

MAX_LOGIN_BODY = 4096
COOKIE_PATH = "/dashboard"
_STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_static() -> dict[str, tuple[bytes, str]]:
    """The shipped files of ``dashboard/static`` (name → (bytes, content type)); read once, served from memory."""
    folder = resources.files("realtime_sio.dashboard") / "static"
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


class Guard:
    """Decides whether a request carries the admin credential."""

    def __init__(self, token: str, clock: Callable[[], float] = time.time) -> None:
        self._token = token
        self._clock = clock

    def verdict(self, request: web.Request) -> credentials.Verdict:
        """``valid`` / ``invalid`` / ``absent`` over the Basic header and the session cookie together."""
        return credentials.combine(
            credentials.check_basic(request.headers.get("Authorization"), self._token),
            credentials.check_session(request.cookies.get(credentials.COOKIE_NAME), self._token, self._clock()),
        )

    def token_matches(self, candidate: str) -> bool:
        return credentials.token_matches(candidate, self._token)

    def new_session(self) -> str:
        return credentials.mint_session(self._token, self._clock())


def _same_origin(request: web.Request) -> bool:
    """False when the browser says the form was posted from another site or origin (``Sec-Fetch-Site``).

    The session cookie is SameSite=Strict already; this also stops other sites from signing a viewer in or out.
    ``Sec-Fetch-Site`` is set by the browser (pages cannot forge it) and, unlike comparing ``Origin`` with ``Host``,
    survives reverse proxies that rewrite ``Host``. Clients that do not send it (curl, scripts) pass.
    """
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def _over_https(request: web.Request) -> bool:
    """True on a TLS connection, or behind a TLS-terminating proxy that says so (``X-Forwarded-Proto: https``).

    Trusting the header here is safe: a spoofed value can only make a cookie stricter (``Secure``), never looser.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def login_token(content_type: str, body: bytes) -> str | None:
    """The ``token`` field of a URL-encoded login form (``""`` when absent); None for a body that is not one.

    Parsed here rather than by ``request.post()``, which answers 500 for a body that is not UTF-8, an unknown
    charset or a malformed multipart body (issue 11, item 3).
    """
    if content_type != "application/x-www-form-urlencoded":
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=8)
    except ValueError:  # UnicodeDecodeError, or too many fields
        return None
    values = fields.get("token")
    return values[0] if values else ""


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    if response.prepared:  # a stream already sent its own headers
        return response
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def routes(token: str, feed: Feed, streams: Streams, static: dict[str, tuple[bytes, str]] | None = None) -> list[web.RouteDef]:
    """The dashboard route table bound to the admin ``token``, the snapshot feed and the stream limiter."""
    guard = Guard(token)
    files = static if static is not None else load_static()

    def login_page(message: str, status: int) -> web.Response:
        # No WWW-Authenticate here even on 401: with a Basic challenge the browser would replace the form with its
        # own credentials dialog.
        body = files["login.html"][0].decode().replace("{{message}}", html.escape(message))
        response = web.Response(text=body, content_type="text/html", status=status)
        _secured(response)
        return response

    def unauthorized_json(request: web.Request) -> web.StreamResponse:
        # Challenge only clients that speak Basic already (curl -u, scripts); a browser's EventSource or fetch
        # would otherwise pop up a credentials dialog when its session cookie expires.
        basic = request.headers.get("Authorization", "")[:6].lower() == "basic "
        headers = {"WWW-Authenticate": 'Basic realm="realtime_sio dashboard", charset="UTF-8"'} if basic else {}
        error = errors.DASHBOARD_UNAUTHORIZED
        return _secured(web.json_response({"error": error.payload()}, status=error.status, headers=headers))

    def guarded(handler: Handler, *, page: bool = False) -> Handler:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            verdict = guard.verdict(request)
            if verdict == "valid":
                return _secured(await handler(request))
            if verdict == "invalid":
                log.warning("dashboard_auth_failed", path=request.path, remote=request.remote)
            if not page:
                return unauthorized_json(request)
            if verdict == "absent":
                return login_page("", 200)  # absent is not wrong: offer the form
            response = login_page("That credential is not valid.", 401)
            response.del_cookie(credentials.COOKIE_NAME, path=COOKIE_PATH)
            return response

        return wrapper

    async def index(_: web.Request) -> web.StreamResponse:
        body, content_type = files["index.html"]
        return web.Response(body=body, content_type=content_type)

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in files or name.endswith(".html"):
            return _secured(web.Response(status=404, text="404: Not Found"))
        body, content_type = files[name]
        return _secured(web.Response(body=body, content_type=content_type))

    async def snapshot_json(_: web.Request) -> web.StreamResponse:
        return web.Response(body=await feed.encoded(), content_type="application/json")

    async def login(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            return login_page("Sign in from this server's own page.", 403)
        if request.content_length is None or request.content_length > MAX_LOGIN_BODY:
            return login_page("The login form is too large.", 400)
        candidate = login_token(request.content_type, await request.read())
        if candidate is None:
            return login_page("The login form is not valid.", 400)
        if not guard.token_matches(candidate):
            log.warning("dashboard_login_failed", remote=request.remote)
            return login_page("That token is not valid.", 401)
        log.info("dashboard_login", remote=request.remote)
        response = _see_other("/dashboard")
        response.set_cookie(
            credentials.COOKIE_NAME,
            guard.new_session(),
            max_age=credentials.SESSION_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=_over_https(request),
        )
        return _secured(response)

    async def logout(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            return _secured(web.Response(status=403, text="cross-site sign-out refused"))
        response = _see_other("/dashboard")
        response.del_cookie(credentials.COOKIE_NAME, path=COOKIE_PATH)
        return _secured(response)

    async def slash(_: web.Request) -> web.StreamResponse:
        return web.Response(status=308, headers={"Location": "/dashboard"})

    return [
        web.get("/dashboard", guarded(index, page=True)),
        web.get("/dashboard/", slash),
        web.post("/dashboard/login", login),
        web.post("/dashboard/logout", logout),
        web.get("/dashboard/static/{name}", asset),  # the shipped JS/CSS hold no data; the login page needs the CSS
        web.get("/dashboard/snapshot.json", guarded(snapshot_json)),
        web.get("/dashboard/stream", guarded(streams.serve)),
    ]
