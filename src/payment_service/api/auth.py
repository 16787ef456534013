"""Bearer tokens: verifying a JWT into a `Principal`, and minting one for local use.

Algorithms are pinned by configuration, never read from the token (so `alg: none` and HS/RS confusion
fail); `exp` and `sub` are required, `iss` and `aud` checked when configured. HS* use the shared secret;
RS256/ES256 a PEM public key or a JWKS URL, whose keys are fetched in a thread (PyJWT's client blocks)
and cached by `kid`. Verified tokens are cached until they expire, as clients reuse them.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt

from payment_service.domain.errors import AuthenticationFailed
from payment_service.settings import AuthSettings

ADMIN_ROLE: Final = "admin"
REFUND_SCOPE: Final = "payments:refund"  # a back-office service token may refund without being admin
_CACHE_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject (a customer id) and roles."""

    customer_id: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()  # OAuth 2 `scope` claim

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @property
    def can_refund(self) -> bool:
        return self.is_admin or REFUND_SCOPE in self.scopes


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationFailed("token subject is missing")
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = roles.split()
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AuthenticationFailed("token roles are malformed")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise AuthenticationFailed("token scope is malformed")
    return Principal(subject, frozenset(roles), frozenset(scope.split()))


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._algorithms = [settings.algorithm]
        self._static_key: Any = None
        self._jwks: jwt.PyJWKClient | None = None
        if settings.algorithm.startswith("HS"):
            self._static_key = settings.secret.get_secret_value()
        elif settings.public_key:
            self._static_key = settings.public_key
        elif settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True)
        else:
            raise ValueError(f"{settings.algorithm} needs auth.public_key or auth.jwks_url")
        self._jwks_keys: dict[str, Any] = {}
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The token's principal. Raises: AuthenticationFailed, with a message naming the check that failed."""
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires_at = cached
            if time.time() < expires_at + self._settings.leeway_s:
                return principal
            del self._verified[token]
        key = self._static_key if self._jwks is None else await self._jwks_key(token)
        claims = self.decode(token, key)
        principal = _principal_from_claims(claims)
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified[token] = (principal, float(claims["exp"]))
        return principal

    def decode(self, token: str, key: Any) -> dict[str, Any]:
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                # With no audience configured, a token naming any audience is meant for someone else.
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationFailed("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationFailed("token audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationFailed("token issuer is not accepted") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationFailed(f"token lacks the {exc.claim} claim") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthenticationFailed("token algorithm is not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationFailed("token signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("token is invalid") from exc

    async def _jwks_key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("token is invalid") from exc
        if isinstance(kid, str) and kid in self._jwks_keys:
            return self._jwks_keys[kid]
        assert self._jwks is not None  # noqa: S101 - only called when a JWKS client exists
        try:
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError as exc:
            raise AuthenticationFailed("token signing key is unknown") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("token is invalid") from exc
        if isinstance(kid, str):
            self._jwks_keys[kid] = signing_key.key
        return signing_key.key


def mint_token(
    settings: AuthSettings,
    *,
    customer_id: str,
    roles: Sequence[str] = (),
    ttl_s: int = 3600,
    scopes: Sequence[str] = (),
) -> str:
    """A token for `customer_id` signed with the configured shared secret; for local use and tests.

    Raises:
        ValueError: the configured algorithm is asymmetric (minting needs the private key, which we do not hold).
    """
    if not settings.algorithm.startswith("HS"):
        raise ValueError("minting tokens needs an HS* algorithm and its shared secret")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": customer_id, "iat": now, "exp": now + ttl_s, "roles": list(roles)}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if settings.issuer:
        claims["iss"] = settings.issuer
    if settings.audience:
        claims["aud"] = settings.audience
    return jwt.encode(claims, settings.secret.get_secret_value(), algorithm=settings.algorithm)
