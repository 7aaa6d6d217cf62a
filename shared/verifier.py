"""Whose a token is: the app's own HS256 tokens, and its identity provider's.

Tokens signed HS256 with AUTH_SECRET are what the app's backend (or ``threadline token``) mints:
``sub``, ``admin``, ``teams`` and ``exp`` as shared.auth reads them. With AUTH_JWKS_URL, tokens of
the app's identity provider (Clerk, Auth0, Supabase Auth, Keycloak...) are accepted too: signed with
one of the keys the provider publishes (RS*, PS*, ES*, EdDSA; chosen by the token's ``kid``), from
AUTH_ISSUER for AUTH_AUDIENCE when those are set, unexpired, and naming the user in
AUTH_USER_CLAIM. AUTH_ADMIN_CLAIM is ``name`` (admin when the claim is true) or ``name=value``
(admin when the claim is that value or a list holding it); AUTH_TEAMS_CLAIM names a list of teams.

The published keys are fetched once and kept; a token whose ``kid`` is unknown makes one fetch
(at most every AUTH_JWKS_REFETCH_S, so made-up ids cannot flood the provider), which is how a rotated key
is picked up. Keys older than AUTH_JWKS_REFRESH_S are fetched again. A provider that cannot be
reached while no key is known is ``unavailable`` (try again), never a reason to let a token in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import jwt

from threadline.shared.auth import ALGORITHM, Identity, identity_from, verify
from threadline.shared.config import Settings
from threadline.shared.errors import Unauthorized, Unavailable

log = logging.getLogger(__name__)

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
FETCH_TIMEOUT_S = 5


class Verifier:
    """Checks tokens for one process (see the module docstring)."""

    def __init__(self, secret: str, settings: Settings | None = None) -> None:
        self._secret = secret
        self._jwks = _Keys(settings.auth_jwks_url, settings.auth_jwks_refresh_s, settings.auth_jwks_refetch_s) \
            if settings is not None and settings.auth_jwks_url else None
        self._issuer = settings.auth_issuer if settings else None
        self._audience = settings.auth_audience if settings else None
        self._user_claim = settings.auth_user_claim if settings else "sub"
        admin = settings.auth_admin_claim if settings else "admin"
        self._admin_claim, _, self._admin_value = admin.partition("=")
        self._teams_claim = settings.auth_teams_claim if settings else "teams"
        self._mapped = settings.mapped_claims if settings else ()

    async def verify(self, token: str) -> Identity:
        """The identity in a valid token; Unauthorized otherwise (Unavailable while the identity
        provider's keys cannot be had)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg == ALGORITHM:
            return verify(self._secret, token, mapped=self._mapped)
        if self._jwks is None:
            raise Unauthorized(f"tokens signed with {alg!r} are not accepted (set AUTH_JWKS_URL for an identity provider)")
        if alg not in ASYMMETRIC:
            raise Unauthorized(f"tokens signed with {alg!r} are not accepted")
        key = await self._jwks.key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(token, key, algorithms=[alg], issuer=self._issuer, audience=self._audience,
                                options={"require": ["exp", self._user_claim],
                                         "verify_aud": self._audience is not None})
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return identity_from(claims, user_claim=self._user_claim, admin_claim=self._admin_claim,
                             admin_value=self._admin_value, teams_claim=self._teams_claim, mapped=self._mapped)


class _Keys:
    """The identity provider's published signing keys, by key id."""

    def __init__(self, url: str, refresh_s: float, refetch_s: float) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=FETCH_TIMEOUT_S)
        self._refresh_s, self._refetch_s = refresh_s, refetch_s
        self._keys: dict[str, Any] = {}
        self._fetched = -refresh_s - 1  # monotonic time of the last fetch that answered (none yet)
        self._tried = -refetch_s - 1  # and of the last attempt
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> Any:
        """The key a token names (a provider with one key may leave ``kid`` out)."""
        now = time.monotonic()
        due = now - self._fetched > self._refresh_s or (kid is not None and kid not in self._keys)
        if due and now - self._tried >= self._refetch_s:
            async with self._lock:  # one fetch for every token waiting on it
                if self._tried < now:
                    await self._fetch()
        if not self._keys:
            raise Unavailable("the identity provider's signing keys cannot be fetched; try again")
        if kid is None:
            if len(self._keys) != 1:
                raise Unauthorized("the token names no key (kid) and the provider publishes several")
            return next(iter(self._keys.values()))
        found = self._keys.get(kid)
        if found is None:
            raise Unauthorized(f"the token's key {kid!r} is not one the identity provider publishes")
        return found

    async def _fetch(self) -> None:
        self._tried = time.monotonic()
        try:
            jwk_set = await asyncio.to_thread(self._client.get_jwk_set, True)
        except jwt.PyJWKClientError as exc:
            if not self._keys:
                raise Unavailable("the identity provider's signing keys cannot be fetched; try again") from exc
            log.warning("could not refresh the identity provider's keys (keeping %d): %s", len(self._keys), exc)
            return
        self._keys = {k.key_id: k.key for k in jwk_set.keys if k.key_id}
        self._fetched = time.monotonic()
