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
        return s.public_key

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

