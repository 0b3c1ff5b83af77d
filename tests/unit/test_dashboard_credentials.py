"""Dashboard credentials: HTTP Basic checks and the expiring HMAC session cookie."""

from __future__ import annotations

import base64

import pytest

from realtime_sio.dashboard import credentials

TOKEN = "dashboard-token-0123456789"
NOW = 1_700_000_000.0


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_session_cookie_is_valid_until_it_expires() -> None:
    """A minted cookie verifies with the same token and stops verifying after its lifetime."""
    cookie = credentials.mint_session(TOKEN, NOW, lifetime=60)
    assert credentials.check_session(cookie, TOKEN, NOW + 59) == "valid"
    assert credentials.check_session(cookie, TOKEN, NOW + 61) == "invalid"


def test_session_cookie_never_contains_the_token() -> None:
    """The cookie value is an expiry and a hex HMAC, not the token or an encoding of it."""
    cookie = credentials.mint_session(TOKEN, NOW)
    assert TOKEN not in cookie
    assert base64.b64encode(TOKEN.encode()).decode() not in cookie
    expires, _, digest = cookie.partition(".")
    assert expires.isdigit() and len(digest) == 64


def test_session_cookie_dies_with_token_rotation() -> None:
    """A cookie minted with an old token is invalid once the token changes."""
    cookie = credentials.mint_session(TOKEN, NOW)
    assert credentials.check_session(cookie, TOKEN + "-rotated", NOW) == "invalid"


def test_tampered_cookies_are_invalid() -> None:
    """Extending the expiry, editing the digest or sending garbage is refused."""
    cookie = credentials.mint_session(TOKEN, NOW, lifetime=60)
    expires, _, digest = cookie.partition(".")
    assert credentials.check_session(f"{int(expires) + 3600}.{digest}", TOKEN, NOW) == "invalid"
    flipped = digest[:-1] + ("1" if digest[-1] == "0" else "0")
    assert credentials.check_session(f"{expires}.{flipped}", TOKEN, NOW) == "invalid"
    for garbage in ("x", ".", "123.", "abc.def", "9" * 40 + ".00"):
        assert credentials.check_session(garbage, TOKEN, NOW) == "invalid"


def test_absent_cookie_is_absent_not_invalid() -> None:
    """No cookie means no credential, which the routes answer with the login form rather than a 401."""
    assert credentials.check_session(None, TOKEN, NOW) == "absent"
    assert credentials.check_session("", TOKEN, NOW) == "absent"


def test_basic_accepts_the_token_as_password_with_any_user() -> None:
    """HTTP Basic is valid when the password is the token; the user name is ignored."""
    assert credentials.check_basic(basic("admin", TOKEN), TOKEN) == "valid"
    assert credentials.check_basic(basic("", TOKEN), TOKEN) == "valid"
    assert credentials.check_basic(basic("admin", "wrong"), TOKEN) == "invalid"


def test_basic_malformed_and_absent_headers() -> None:
    """Other schemes are absent; undecodable or colon-less Basic values are invalid."""
    assert credentials.check_basic(None, TOKEN) == "absent"
    assert credentials.check_basic("Bearer abc", TOKEN) == "absent"
    assert credentials.check_basic("Basic !!!", TOKEN) == "invalid"
    assert credentials.check_basic("Basic " + base64.b64encode(b"no-colon").decode(), TOKEN) == "invalid"


def test_combine_prefers_any_valid_credential() -> None:
    """One valid credential wins; a wrong one with none valid is invalid; nothing presented is absent."""
    assert credentials.combine("invalid", "valid") == "valid"
    assert credentials.combine("absent", "invalid") == "invalid"
    assert credentials.combine("absent", "absent") == "absent"


@pytest.mark.parametrize("expires", ["\u00b21", "\u0661\u0662", "12a", "-1", "1" * 13, ""])
def test_cookie_expiry_must_be_ascii_digits(expires: str) -> None:
    """Unicode digits ("²", Arabic-Indic) that str.isdigit() accepts but int() refuses make a cookie invalid."""
    assert credentials.check_session(f"{expires}.abc", TOKEN, NOW) == "invalid"


@pytest.mark.parametrize("header", ["Basic \u00e9\u00e9", "Basic \udcff\udcfe", "Basic " + "\u0661" * 8])
def test_basic_with_non_ascii_is_invalid(header: str) -> None:
    """A Basic value with non-ASCII characters (or undecodable bytes as surrogates) is invalid, never an exception."""
    assert credentials.check_basic(header, TOKEN) == "invalid"


def test_token_match_survives_undecodable_input() -> None:
    """A candidate holding lone surrogates (a non-UTF-8 form value) is simply not the token."""
    assert credentials.token_matches("\udcff" + TOKEN, TOKEN) is False
