"""Unit tests of JWT verification (auth/tokens.py): every bad-token kind and every key type."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from realtime_sio.auth.tokens import ANONYMOUS, TokenVerifier, mint
from realtime_sio.errors import RealtimeError
from realtime_sio.settings import JwtSettings

SECRET = "s" * 64


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "42", "roles": ["admin"], "name": "Ann", "iat": now, "exp": now + 300, **extra}


def code_of(verifier: TokenVerifier, tok: Any) -> str:
    with pytest.raises(RealtimeError) as info:
        verifier.verify(tok)
    return info.value.error.code


def test_absent_token_is_anonymous() -> None:
    """None and "" are the anonymous identity, not an error."""
    v = TokenVerifier(JwtSettings(secret=SECRET))
    assert v.verify(None) is ANONYMOUS and v.verify("") is ANONYMOUS


def test_valid_hs256_gives_identity() -> None:
    """A valid token yields user id, roles and presence info (numeric ids stay numeric in user_info)."""
    identity = TokenVerifier(JwtSettings(secret=SECRET)).verify(jwt.encode(claims(), SECRET, "HS256"))
    assert identity.user_id == "42" and identity.roles == {"admin"}
    assert identity.info == {"id": 42, "name": "Ann"}


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: jwt.encode(claims(exp=int(time.time()) - 120), SECRET, "HS256"), "token_expired"),
        (lambda: jwt.encode(claims(nbf=int(time.time()) + 120), SECRET, "HS256"), "token_not_yet_valid"),
        (lambda: jwt.encode(claims(), "t" * 64, "HS256"), "token_bad_signature"),
        (lambda: jwt.encode(claims(), SECRET, "HS512"), "token_bad_algorithm"),
        (lambda: jwt.encode(claims(), None, "none"), "token_bad_algorithm"),
        (lambda: "a.b", "token_malformed"),
        (lambda: "\u00ff" * 20, "token_malformed"),
        (lambda: "x" * 9000, "token_too_large"),
        (lambda: jwt.encode({"sub": "1"}, SECRET, "HS256"), "token_missing_claim"),
        (lambda: jwt.encode(claims(sub=None), SECRET, "HS256"), "token_missing_claim"),
        (lambda: jwt.encode(claims(sub=True), SECRET, "HS256"), "token_missing_claim"),
        (lambda: 12345, "token_malformed"),
    ],
)
def test_bad_tokens(make: Any, code: str) -> None:
    """Each bad token kind maps to its catalogue code."""
    assert code_of(TokenVerifier(JwtSettings(secret=SECRET)), make()) == code


def test_leeway_accepts_small_clock_skew() -> None:
    """A token expired 5 s ago passes with the default 30 s leeway and fails with 0."""
    tok = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, "HS256")
    assert TokenVerifier(JwtSettings(secret=SECRET)).verify(tok).user_id == "42"
    assert code_of(TokenVerifier(JwtSettings(secret=SECRET, leeway_seconds=0)), tok) == "token_expired"


def test_tokens_disabled_without_key() -> None:
    """With no key configured a presented token is refused (tokens_disabled), not silently anonymous."""
    assert code_of(TokenVerifier(JwtSettings()), jwt.encode(claims(), SECRET, "HS256")) == "tokens_disabled"


def _rsa() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, pem


def test_rs256_public_key_and_confusion_attack() -> None:
    """RS256 verifies with the PEM; an HS256 token signed with the public key as secret is refused."""
    key, pem = _rsa()
    v = TokenVerifier(JwtSettings(public_key=pem, algorithms=("RS256",)))
    assert v.verify(jwt.encode(claims(), key, "RS256")).user_id == "42"
    forged = jwt.api_jws.PyJWS().encode(json.dumps(claims()).encode(), key=b"x" * 64, algorithm="HS256")
    assert code_of(v, forged) == "token_bad_algorithm"


def test_es256_public_key() -> None:
    """ES256 tokens verify against an EC public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    v = TokenVerifier(JwtSettings(public_key=pem, algorithms=("ES256",)))
    assert v.verify(jwt.encode(claims(), key, "ES256")).roles == {"admin"}
    other = ec.generate_private_key(ec.SECP256R1())
    assert code_of(v, jwt.encode(claims(), other, "ES256")) == "token_bad_signature"


def test_jwks_selects_key_by_kid() -> None:
    """With a JWKS the key is chosen by kid; an unknown kid is a bad signature."""
    key, _ = _rsa()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    v = TokenVerifier(JwtSettings(jwks=json.dumps({"keys": [jwk]}), algorithms=("RS256",)))
    assert v.verify(jwt.encode(claims(), key, "RS256", headers={"kid": "k1"})).user_id == "42"
    assert code_of(v, jwt.encode(claims(), key, "RS256", headers={"kid": "nope"})) == "token_bad_signature"


def test_configurable_claims_and_comma_roles() -> None:
    """user/roles/info claims are configurable; roles may be a comma string."""
    s = JwtSettings(secret=SECRET, user_claim="uid", roles_claim="perm", info_claims=("email",))
    tok = jwt.encode({"uid": 7, "perm": "a, b", "email": "e@x", "exp": int(time.time()) + 60}, SECRET, "HS256")
    identity = TokenVerifier(s).verify(tok)
    assert identity.user_id == "7" and identity.roles == {"a", "b"} and identity.info == {"id": 7, "email": "e@x"}


def test_mint_round_trip_and_requires_secret() -> None:
    """mint() produces a token the verifier accepts; without a secret it explains why it cannot."""
    s = JwtSettings(secret=SECRET, issuer="iss", audience="aud")
    assert TokenVerifier(s).verify(mint(s, "9", ["x"], "N", 60)).info == {"id": 9, "name": "N"}
    with pytest.raises(ValueError, match="REALTIME_SIO_JWT_SECRET"):
        mint(JwtSettings(), "1")


@pytest.mark.parametrize("algorithms", [("HS256",), ("HS256", "RS256")], ids=["one key kind", "both key kinds"])
def test_refused_algorithm_is_named_in_the_detail(algorithms: tuple[str, ...]) -> None:
    """Whether the header is read before verifying (two key kinds) or only on refusal (one), the detail names the alg."""
    _, pem = _rsa()
    verifier = TokenVerifier(JwtSettings(secret=SECRET, public_key=pem, algorithms=algorithms))
    with pytest.raises(RealtimeError) as refused:
        verifier.verify(jwt.encode(claims(), SECRET, "HS512"))
    assert refused.value.error.code == "token_bad_algorithm" and refused.value.detail == "alg 'HS512' not accepted"
    assert verifier.verify(jwt.encode(claims(), SECRET, "HS256")).user_id == "42"


def test_an_hmac_secret_that_is_a_public_key_is_refused_on_every_token() -> None:
    """The HMAC key checks run once per secret, but a refused secret is refused again for the next token."""
    _, pem = _rsa()
    verifier = TokenVerifier(JwtSettings(secret=pem, algorithms=("HS256",)))
    forged = jwt.api_jws.PyJWS().encode(json.dumps(claims()).encode(), key=b"x" * 64, algorithm="HS256")
    assert code_of(verifier, forged) == "token_bad_algorithm"
    assert code_of(verifier, forged) == "token_bad_algorithm"


def test_hmac_verification_with_kept_key_checks_still_tells_a_wrong_signature() -> None:
    """After a good token (its secret's checks kept), a token signed with another secret is still refused."""
    verifier = TokenVerifier(JwtSettings(secret=SECRET, algorithms=("HS256", "HS512")))
    for alg in ("HS256", "HS512", "HS256"):
        assert verifier.verify(jwt.encode(claims(), SECRET, alg)).user_id == "42"
        assert code_of(verifier, jwt.encode(claims(), "t" * 64, alg)) == "token_bad_signature"


def test_the_public_key_is_parsed_once_at_start_not_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PEM is turned into a key object when the verifier is built; verifying tokens parses it no more."""
    key, pem = _rsa()
    verifier = TokenVerifier(JwtSettings(public_key=pem, algorithms=("RS256",)))
    parsed: list[bytes] = []
    real = jwt.algorithms.load_pem_public_key
    monkeypatch.setattr(jwt.algorithms, "load_pem_public_key", lambda data, *a, **k: parsed.append(data) or real(data, *a, **k))
    for _ in range(3):
        assert verifier.verify(jwt.encode(claims(), key, "RS256")).user_id == "42"
    assert parsed == []


def test_a_public_key_no_accepted_algorithm_takes_refuses_every_token() -> None:
    """An RSA key with only ES256 accepted: kept as text, and each token is refused as before."""
    _, pem = _rsa()
    verifier = TokenVerifier(JwtSettings(public_key=pem, algorithms=("ES256",)))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    assert code_of(verifier, jwt.encode(claims(), ec_key, "ES256")) == "token_bad_algorithm"


def test_the_hmac_secret_is_checked_once_not_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyJWT's checks of an HMAC secret (is it a PEM key, ...) run at most once for many tokens."""
    verifier = TokenVerifier(JwtSettings(secret=SECRET, algorithms=("HS256",)))
    checked: list[bytes] = []
    real = jwt.algorithms.is_pem_format
    monkeypatch.setattr(jwt.algorithms, "is_pem_format", lambda key: checked.append(key) or real(key))
    for _ in range(3):
        assert verifier.verify(jwt.encode(claims(), SECRET, "HS256")).user_id == "42"
    assert len(checked) <= 1
