"""Pusher HTTP API signatures: the §4 worked example and every way a request can fail verification."""

from __future__ import annotations

import pytest

from realtime_sio import errors
from realtime_sio.auth import pusher_signature
from realtime_sio.auth.pusher_signature import (
    body_md5,
    sign,
    signed_params,
    string_to_sign,
    verify,
)
from realtime_sio.errors import RealtimeError

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
TS = 1353088179
BODY = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
MD5 = "ec365a775a4cd0599faeb73354201b6f"
SIGNATURE = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
PATH = "/apps/3/events"


def _query(**overrides: str) -> list[tuple[str, str]]:
    query = {"auth_key": KEY, "auth_timestamp": str(TS), "auth_version": "1.0", "body_md5": MD5, "auth_signature": SIGNATURE}
    query.update(overrides)
    return [(k, v) for k, v in query.items() if v != "<drop>"]


def _verify(query: list[tuple[str, str]], body: bytes = BODY, method: str = "POST", path: str = PATH, now: float = TS, window: int = 600) -> None:
    verify(key=KEY, secret=SECRET, method=method, paths=[path], query=query, body=body, now=now, window=window)


def _code(query: list[tuple[str, str]], **kwargs: object) -> str:
    with pytest.raises(RealtimeError) as info:
        _verify(query, **kwargs)  # type: ignore[arg-type]
    return info.value.error.code


def test_vector_md5() -> None:
    """The worked example's body hashes to the documented body_md5."""
    assert body_md5(BODY) == MD5


def test_vector_string_to_sign() -> None:
    """The string to sign is METHOD, path and the sorted query joined by newlines."""
    params = {"auth_timestamp": str(TS), "auth_key": KEY, "body_md5": MD5, "auth_version": "1.0"}
    assert string_to_sign("post", PATH, params) == (
        f"POST\n{PATH}\nauth_key={KEY}&auth_timestamp={TS}&auth_version=1.0&body_md5={MD5}"
    )


def test_vector_signature() -> None:
    """sign() reproduces the documented auth_signature."""
    params = {"auth_key": KEY, "auth_timestamp": str(TS), "auth_version": "1.0", "body_md5": MD5}
    assert sign(SECRET, "POST", PATH, params) == SIGNATURE


def test_signed_params_match_vector() -> None:
    """signed_params builds the query a Pusher SDK sends, signature included."""
    query = signed_params(KEY, SECRET, "POST", PATH, BODY, TS)
    assert query["body_md5"] == MD5 and query["auth_signature"] == SIGNATURE


def test_vector_verifies() -> None:
    """The worked example verifies at its own timestamp."""
    _verify(_query())


def test_uppercase_query_keys_are_lowercased() -> None:
    """Keys are lowercased before signing, so AUTH_KEY=... verifies like auth_key=..."""
    query = [(k.upper() if k == "auth_key" else k, v) for k, v in _query()]
    _verify(query)


def test_window_zero_skips_timestamp() -> None:
    """window=0 turns the timestamp check off (Reverb's behaviour)."""
    _verify(_query(), now=TS + 10_000_000, window=0)


@pytest.mark.parametrize("skew", [601, -601])
def test_stale_or_future_timestamp(skew: int) -> None:
    """auth_timestamp more than 600 s from now is refused."""
    assert _code(_query(), now=TS + skew) == errors.API_TIMESTAMP_EXPIRED.code


@pytest.mark.parametrize("skew", [600, -600])
def test_timestamp_on_the_edge_accepted(skew: int) -> None:
    """Exactly 600 s of skew is still inside the window."""
    _verify(_query(), now=TS + skew)


def test_tampered_body() -> None:
    """A body that no longer matches body_md5 is refused."""
    assert _code(_query(), body=BODY.replace(b"foo", b"bar")) == errors.API_SIGNATURE_INVALID.code


def test_wrong_body_md5_with_resigned_query() -> None:
    """Signing a wrong body_md5 does not help: the server recomputes it from the body."""
    params = {"auth_key": KEY, "auth_timestamp": str(TS), "auth_version": "1.0", "body_md5": "0" * 32}
    query = [*params.items(), ("auth_signature", sign(SECRET, "POST", PATH, params))]
    assert _code(query) == errors.API_SIGNATURE_INVALID.code


def test_missing_body_md5() -> None:
    """A non-empty body needs body_md5."""
    assert _code(_query(body_md5="<drop>")) == errors.API_SIGNATURE_INVALID.code


def test_tampered_signature() -> None:
    """One changed hex digit of auth_signature is refused."""
    assert _code(_query(auth_signature=SIGNATURE[:-1] + "d")) == errors.API_SIGNATURE_INVALID.code


def test_missing_signature() -> None:
    """No auth_signature at all is refused."""
    assert _code(_query(auth_signature="<drop>")) == errors.API_SIGNATURE_INVALID.code


def test_extra_unsigned_param() -> None:
    """A query parameter added after signing breaks the signature."""
    assert _code([*_query(), ("info", "user_count")]) == errors.API_SIGNATURE_INVALID.code


def test_wrong_method() -> None:
    """The method is part of the signed string."""
    assert _code(_query(), method="PUT") == errors.API_SIGNATURE_INVALID.code


def test_path_with_prefix() -> None:
    """A different path (e.g. with a mount prefix) does not verify."""
    assert _code(_query(), path="/pusher" + PATH) == errors.API_SIGNATURE_INVALID.code


def test_wrong_key() -> None:
    """An auth_key that is not this app's is refused as unauthorized."""
    assert _code(_query(auth_key="someone-else")) == errors.API_UNAUTHORIZED.code


def test_wrong_secret() -> None:
    """A request signed with another secret is refused."""
    query = signed_params(KEY, "x" * 20, "POST", PATH, BODY, TS)
    assert _code(list(query.items())) == errors.API_SIGNATURE_INVALID.code


def test_bad_auth_version() -> None:
    """auth_version other than 1.0 is refused."""
    assert _code(_query(auth_version="2.0")) == errors.API_SIGNATURE_INVALID.code


def test_non_numeric_timestamp() -> None:
    """auth_timestamp must be Unix seconds."""
    assert _code(_query(auth_timestamp="yesterday")) == errors.API_SIGNATURE_INVALID.code


def test_get_without_body() -> None:
    """A GET with no body verifies without body_md5, extra params included in the signature."""
    query = signed_params(KEY, SECRET, "GET", "/apps/3/channels", b"", TS, {"filter_by_prefix": "presence-", "info": "user_count"})
    assert "body_md5" not in query
    verify(key=KEY, secret=SECRET, method="GET", paths=["/apps/3/channels"], query=query.items(), body=b"", now=TS, window=600)


@pytest.mark.parametrize("timestamp", ["\u00b2", "\u0661\u0662\u0663", "1" * 13, "", " 1"])
def test_unicode_digit_timestamp(timestamp: str) -> None:
    """auth_timestamp of Unicode digits (str.isdigit() accepts them, int() does not) is signature_invalid."""
    assert _code(_query(auth_timestamp=timestamp)) == errors.API_SIGNATURE_INVALID.code


def test_undecodable_query_values_are_refused_not_raised() -> None:
    """auth_key, body_md5 and auth_signature holding lone surrogates are compared as bytes and refused."""
    assert _code(_query(auth_key="\udcff")) == errors.API_UNAUTHORIZED.code
    assert _code(_query(body_md5="\udcff")) == errors.API_SIGNATURE_INVALID.code
    assert _code(_query(auth_signature="\udcff")) == errors.API_SIGNATURE_INVALID.code
    assert _code(_query(), path="/apps/\udcff/events") == errors.API_SIGNATURE_INVALID.code


# -- channel subscriptions (pusher-reverb-soketi.md §5 vectors) --------------------------------------------------------

_KEY, _SECRET = "278d425bdf160c739803", "7ad3773142a6692b25b8"


def test_private_channel_vector() -> None:
    """Pusher's worked example for private-foobar and socket 1234.1234."""
    expected = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    assert pusher_signature.channel_auth(_KEY, _SECRET, "1234.1234", "private-foobar") == expected
    assert pusher_signature.channel_auth_valid(_KEY, _SECRET, "1234.1234", "private-foobar", expected)


def test_presence_channel_vector() -> None:
    """The signature covers channel_data as the exact string sent."""
    data = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}'
    expected = "278d425bdf160c739803:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"
    assert pusher_signature.channel_auth(_KEY, _SECRET, "1234.1234", "presence-foobar", data) == expected
    assert pusher_signature.channel_auth_valid(_KEY, _SECRET, "1234.1234", "presence-foobar", expected, data)
    respaced = '{"user_id": 10, "user_info": {"name": "Mr. Pusher"}}'
    assert not pusher_signature.channel_auth_valid(_KEY, _SECRET, "1234.1234", "presence-foobar", expected, respaced)


def test_channel_auth_refusals() -> None:
    """Other socket, other channel, other key prefix, non-strings and huge values never verify (and never raise)."""
    good = pusher_signature.channel_auth(_KEY, _SECRET, "1.1", "private-a")
    assert not pusher_signature.channel_auth_valid(_KEY, _SECRET, "1.2", "private-a", good)
    assert not pusher_signature.channel_auth_valid(_KEY, _SECRET, "1.1", "private-b", good)
    assert not pusher_signature.channel_auth_valid(_KEY, _SECRET, "1.1", "private-a", "other" + good[len(_KEY) :])
    for bad in (None, 5, "", "\udcff", "x" * 10_000):
        assert not pusher_signature.channel_auth_valid(_KEY, _SECRET, "1.1", "private-a", bad)


def test_user_auth_matches_the_signin_vector() -> None:
    """pusher:signin: the §5 vector (socket 1234.1234, user_data {"id":"12345"}) and its constant-time check."""
    user_data = '{"id":"12345"}'
    expected = f"{KEY}:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
    assert pusher_signature.user_auth(KEY, SECRET, "1234.1234", user_data) == expected
    assert pusher_signature.user_auth_valid(KEY, SECRET, "1234.1234", user_data, expected)
    assert not pusher_signature.user_auth_valid(KEY, SECRET, "1234.1235", user_data, expected)
    assert not pusher_signature.user_auth_valid(KEY, SECRET, "1234.1234", '{"id":"12346"}', expected)
    assert not pusher_signature.user_auth_valid(KEY, SECRET, "1234.1234", user_data, None)
