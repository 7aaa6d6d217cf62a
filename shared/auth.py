"""JWT tokens (HS256 with AUTH_SECRET, ``sub`` = user id, ``exp`` honoured)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import msgspec

from threadline.shared.config import Settings
from threadline.shared.errors import ConfigError, Unauthorized

ALGORITHM = "HS256"
SECRET_FILE = "auth_secret"
MAX_USER_ID = 128
# Ids the store and the HTTP API read as "every user" (the app-wide usage): never a token's subject.
RESERVED_SUBJECTS = frozenset({"*"})
MAX_CLAIMS_BYTES = 8 * 1024  # the claims a token hands to agents (AUTH_CLAIMS), as JSON


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token speaks for, and until when (epoch seconds)."""

    user_id: str
    admin: bool = False
    expires_at: float | None = None
    teams: tuple[str, ...] = ()  # the ``teams`` claim: team namespaces the caller may use
    claims: Mapping[str, Any] = field(default_factory=dict)  # the claims AUTH_CLAIMS hands to agents


def resolve_secret(settings: Settings, *, create: bool = True) -> tuple[str, bool]:
    """(secret, dev_mode). Without AUTH_SECRET, one is kept under DATA_DIR (dev mode).

    ``create=False``: ConfigError when DATA_DIR holds no secret yet (a token minted
    with a new secret would be refused by the server that has the old one).
    """
    if settings.auth_secret:
        return settings.auth_secret, False
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists() and not create:
        raise ConfigError(f"no AUTH_SECRET and no dev secret in {path}: set AUTH_SECRET, or DATA_DIR to the "
                          "directory scripts/run uses")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip(), True


def check_subject(sub: object) -> str:
    """``sub`` if it may name a user: a printable id of 1-128 characters, not a wildcard; Unauthorized otherwise."""
    if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_USER_ID or not sub.isprintable():
        raise Unauthorized("token subject must be a printable user id of 1-128 characters")
    if sub in RESERVED_SUBJECTS:
        raise Unauthorized(f"{sub!r} names every user and cannot be a token's subject")
    return sub


def mint(secret: str, user_id: str, *, ttl_s: int | None = 30 * 86400, admin: bool = False,
         teams: tuple[str, ...] = ()) -> str:
    """A signed token for ``user_id`` (expiring after ``ttl_s`` seconds unless None); Unauthorized for
    an id no token may carry."""
    check_subject(user_id)
    claims: dict[str, object] = {"sub": user_id, "iat": int(time.time())}
    if teams:
        claims["teams"] = list(teams)
    if ttl_s is not None:
        claims["exp"] = int(time.time()) + ttl_s
    if admin:
        claims["admin"] = True
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, *, mapped: tuple[str, ...] = ()) -> Identity:
    """The identity in a valid token; Unauthorized otherwise. ``mapped``: the claims agents get."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    return identity_from(claims, mapped=mapped)


def identity_from(claims: dict[str, Any], *, user_claim: str = "sub", admin_claim: str = "admin",
                  admin_value: str = "", teams_claim: str = "teams", mapped: tuple[str, ...] = ()) -> Identity:
    """Who verified ``claims`` speak for: the user in ``user_claim``; admin when ``admin_claim`` is
    true (or, with ``admin_value``, is that value or a list holding it); the teams listed in
    ``teams_claim``; the ``mapped`` claims the token has, for agents (shared.agents.request).
    Unauthorized for a subject or teams no identity may have, or mapped claims over their bound."""
    user = check_subject(claims.get(user_claim))
    teams = claims.get(teams_claim, [])
    if not isinstance(teams, list) or not all(isinstance(t, str) and 0 < len(t) <= MAX_USER_ID for t in teams):
        raise Unauthorized(f"the {teams_claim} claim must be a list of team ids")
    flag = claims.get(admin_claim)
    admin = (flag == admin_value or (isinstance(flag, list) and admin_value in flag)) if admin_value \
        else flag is True
    exp = claims.get("exp")
    handed = {name: claims[name] for name in mapped if name in claims}
    if handed and len(msgspec.json.encode(handed)) > MAX_CLAIMS_BYTES:
        raise Unauthorized(f"the claims for agents ({', '.join(handed)}) are over {MAX_CLAIMS_BYTES} bytes of JSON")
    return Identity(user, admin=admin, expires_at=float(exp) if isinstance(exp, (int, float)) else None,
                    teams=tuple(teams), claims=handed)


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; Unauthorized when absent."""
    if not header:
        raise Unauthorized("missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()
