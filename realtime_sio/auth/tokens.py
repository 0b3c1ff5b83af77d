"""Verify a connect-time JWT and turn it into an :class:`Identity`; pure, no I/O after construction.

Absent credentials are not bad credentials: ``verify(None)`` is the anonymous identity, while a malformed, expired
or forged token raises :class:`~realtime_sio.errors.RealtimeError` with one catalogue code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from realtime_sio import errors
from realtime_sio.errors import RealtimeError
from realtime_sio.settings import JwtSettings


@dataclass(frozen=True)
class Identity:
    """Who a socket is: a user id (None = anonymous), roles, and the presence ``user_info``."""

    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None


ANONYMOUS = Identity()
NO_ROLES: frozenset[str] = frozenset()  # shared: frozenset() of an empty generator is a new 216-byte object per token


class TokenVerifier:
    """Verifies tokens against the configured key(s), algorithms, issuer and audience."""

    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKSet | None = None
        if settings.jwks:
            try:
                self._jwks = jwt.PyJWKSet.from_json(settings.jwks)
            except (jwt.PyJWTError, ValueError) as exc:
                # Surfaces at start-up through app construction, naming the setting.
                raise ValueError(f"REALTIME_SIO_JWT_JWKS_FILE: not a usable JWKS document ({exc})") from None
        # Without a JWKS, and with only HMAC or only public-key algorithms accepted, the key does not depend on the
        # token's header: one decode per token, with PyJWT refusing any other alg (a header parse less per connect).
        hmac_only = all(alg.startswith("HS") for alg in settings.algorithms)
        keyed_only = not any(alg.startswith("HS") for alg in settings.algorithms)
        self._one_key = self._jwks is None and (hmac_only or keyed_only)
        self._public_key = _loaded_public_key(settings)
        if not keyed_only:
            _check_hmac_keys_once()

    def verify(self, token: str | None) -> Identity:
        """Return the identity a token proves; ``None`` or ``""`` → :data:`ANONYMOUS`.

        Raises ``RealtimeError`` (token_* codes) for every invalid token.
        """
        if token is None or token == "":
            return ANONYMOUS
        s = self._settings
        if not isinstance(token, str):
            raise RealtimeError(errors.TOKEN_MALFORMED, "token must be a string")
        if len(token) > s.max_token_bytes:
            raise RealtimeError(errors.TOKEN_TOO_LARGE)
        if not s.enabled:
            raise RealtimeError(errors.TOKENS_DISABLED)
        key = self._key_for({"alg": s.algorithms[0]}) if self._one_key else self._key_for(self._checked_header(token))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(s.algorithms),
                issuer=s.issuer,
                audience=s.audience,
                leeway=s.leeway_seconds,
                # sub is checked by _identity (ids may be numbers); PyJWT would insist on a string.
                options={"require": ["exp"], "verify_aud": s.audience is not None, "verify_sub": False},
            )
        except jwt.ExpiredSignatureError:
            raise RealtimeError(errors.TOKEN_EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise RealtimeError(errors.TOKEN_NOT_YET_VALID) from None
        except jwt.InvalidSignatureError:
            raise RealtimeError(errors.TOKEN_BAD_SIGNATURE) from None
        except jwt.InvalidAlgorithmError:
            self._checked_header(token)  # names the algorithm refused
            raise RealtimeError(errors.TOKEN_BAD_ALGORITHM) from None
        except jwt.InvalidIssuerError:
            raise RealtimeError(errors.TOKEN_BAD_ISSUER) from None
        except jwt.InvalidAudienceError:
            raise RealtimeError(errors.TOKEN_BAD_AUDIENCE) from None
        except jwt.MissingRequiredClaimError as exc:
            raise RealtimeError(errors.TOKEN_MISSING_CLAIM, f"missing {exc.claim}") from None
        except jwt.InvalidKeyError:
            raise RealtimeError(errors.TOKEN_BAD_ALGORITHM) from None
        except jwt.PyJWTError:
            raise RealtimeError(errors.TOKEN_MALFORMED) from None
        return self._identity(claims)

    def _checked_header(self, token: str) -> Mapping[str, Any]:
        """The token's header, once its ``alg`` is one of the accepted algorithms."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise RealtimeError(errors.TOKEN_MALFORMED) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._settings.algorithms:
            # Covers alg "none" and algorithm confusion (an HS256 token signed with a public key as secret).
            raise RealtimeError(errors.TOKEN_BAD_ALGORITHM, f"alg {alg!r} not accepted")
        return header

    def _key_for(self, header: Mapping[str, Any]) -> Any:
        s = self._settings
        if self._jwks is not None:
            kid = header.get("kid")
            for jwk in self._jwks.keys:
                if kid is None or jwk.key_id == kid:
                    return jwk.key
            raise RealtimeError(errors.TOKEN_BAD_SIGNATURE, "no key with that kid")
        if str(header.get("alg", "")).startswith("HS"):
            return s.secret
        return self._public_key

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        s = self._settings
        raw_user = claims.get(s.user_claim)
        if isinstance(raw_user, bool) or not isinstance(raw_user, (str, int)) or raw_user == "":
            raise RealtimeError(errors.TOKEN_MISSING_CLAIM, f"missing {s.user_claim}")
        user_id = str(raw_user)
        raw_roles = claims.get(s.roles_claim, [])
        if isinstance(raw_roles, str):
            roles = frozenset(r.strip() for r in raw_roles.split(",") if r.strip()) or NO_ROLES
        elif isinstance(raw_roles, list):
            roles = frozenset(str(r) for r in raw_roles if isinstance(r, (str, int)) and not isinstance(r, bool)) or NO_ROLES
        else:
            roles = NO_ROLES
        info: dict[str, Any] = {"id": _json_id(raw_user)}
        for claim in s.info_claims:
            if claim in claims:
                info[claim] = claims[claim]
        return Identity(user_id=user_id, roles=roles, info=info)


def _loaded_public_key(settings: JwtSettings) -> Any:
    """The public key as PyJWT's key object, parsed once: given PEM text, PyJWT parses it again for every token.

    Prepared by the first accepted public-key algorithm that takes it; when none does, the text is kept and each
    token is refused as before (``token_bad_algorithm``)."""
    pem = settings.public_key
    if not pem:
        return pem
    for alg in settings.algorithms:
        if alg.startswith("HS"):
            continue
        try:
            return jwt.get_algorithm_by_name(alg).prepare_key(pem)
        except (jwt.PyJWTError, NotImplementedError, ValueError, TypeError):
            continue
    return pem


class _OnceCheckedHMAC(HMACAlgorithm):
    """PyJWT's HMAC, whose checks of a key run once per key instead of once per token.

    For every token PyJWT prepares the HMAC secret again: it refuses a secret that parses as a PEM, SSH or DER key or
    as a JWK, and measures its length. The secret is this server's own setting, so the answer never changes. Here it
    is kept: about a third of an HS256 verification. A refused key raises each time (nothing is kept).
    """

    def __init__(self, hash_alg: Any) -> None:
        super().__init__(hash_alg)
        self._prepared: dict[bytes, bytes] = {}
        self._length_notes: dict[bytes, str | None] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        raw = key.encode() if isinstance(key, str) else key
        prepared = self._prepared.get(raw)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) < _KEYS_KEPT:
                self._prepared[raw] = prepared
        return prepared

    def check_key_length(self, key: bytes) -> str | None:
        if key in self._length_notes:
            return self._length_notes[key]
        note = super().check_key_length(key)
        if len(self._length_notes) < _KEYS_KEPT:
            self._length_notes[key] = note
        return note


_KEYS_KEPT = 16  # HMAC secrets whose checks are kept (a server has one, or a few while rotating)
_HMAC = {"HS256": HMACAlgorithm.SHA256, "HS384": HMACAlgorithm.SHA384, "HS512": HMACAlgorithm.SHA512}


def _check_hmac_keys_once() -> None:
    """Register :class:`_OnceCheckedHMAC` for HS256/384/512 with PyJWT (its public ``register_algorithm``); once."""
    for name, hash_alg in _HMAC.items():
        if not isinstance(jwt.get_algorithm_by_name(name), _OnceCheckedHMAC):
            jwt.unregister_algorithm(name)
            jwt.register_algorithm(name, _OnceCheckedHMAC(hash_alg))


def _json_id(raw: str | int) -> str | int:
    """Keep numeric ids numeric in ``user_info`` (Laravel sends ints)."""
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 16:
        return int(raw)
    return raw


def mint(
    settings: JwtSettings,
    user: str,
    roles: list[str] | None = None,
    name: str | None = None,
    ttl: int | None = None,
    now: float | None = None,
) -> str:
    """Sign a development/load-test token with the configured HMAC secret.

    Raises ``ValueError`` when no HMAC secret is configured (public-key setups mint with their own issuer).
    """
    if not settings.secret:
        raise ValueError("REALTIME_SIO_JWT_SECRET is not set: `realtime-sio token` signs with the HMAC secret")
    alg = next((a for a in settings.algorithms if a.startswith("HS")), None)
    if alg is None:
        raise ValueError("REALTIME_SIO_JWT_ALGORITHMS has no HS* algorithm to mint with")
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        settings.user_claim: user,
        settings.roles_claim: list(roles or []),
        "iat": issued,
        "exp": issued + (ttl if ttl is not None else settings.default_ttl_seconds),
    }
    if name is not None:
        claims["name"] = name
    if settings.issuer:
        claims["iss"] = settings.issuer
    if settings.audience:
        claims["aud"] = settings.audience
    return jwt.encode(claims, settings.secret, algorithm=alg)

