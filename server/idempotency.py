"""Exactly-once mutations: the first outcome of (clientId, requestId) is kept and replayed.

A request first claims its key with a short lease (SET NX PX). The process that
holds the claim runs the mutation and stores the outcome for at least 24 hours;
a duplicate that arrives meanwhile, on any process, waits for that outcome.
Outcomes of transient failures (unavailable, internal) are not kept, so a retry
runs again; a claim whose process died expires with its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis

from server.mutations import Outcome
from shared import keys
from shared.errors import ChatError, Unavailable
from shared.redis_client import redis_errors

LEASE_MS = 30_000
POLL_S = 0.02
PENDING = b"\x00pending:"  # + the claim's token
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
TRANSIENT = {"unavailable", "internal"}


class StoredOutcome(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    ok: bool
    value: msgspec.Raw = msgspec.Raw(b"null")
    version: int = 0
    error: dict[str, Any] | None = None
    channels: list[str] = []


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredOutcome).decode


def outcome_of(result: Outcome | ChatError) -> StoredOutcome:
    if isinstance(result, ChatError):
        return StoredOutcome(ok=False, error=result.to_dict())
    return StoredOutcome(
        ok=True, value=msgspec.Raw(_encode(result.value)), version=result.version, channels=result.channels
    )


async def run_once(
    redis: aioredis.Redis,
    client_id: str,
    request_id: str,
    ttl_s: int,
    execute: Callable[[], Awaitable[Outcome]],
) -> tuple[StoredOutcome, bool]:
    """(the outcome, whether it is a replay of an earlier execution)."""
    key = keys.idempotency(client_id, request_id)
    claim = PENDING + secrets.token_hex(8).encode()
    while True:
        with redis_errors():
            claimed = await redis.set(key, claim, nx=True, px=LEASE_MS)
        if claimed:
            break
        stored = await _wait_for(redis, key)
        if stored is not None:
            return stored, True
    try:
        result: Outcome | ChatError = await execute()
    except ChatError as exc:
        result = exc
    except BaseException:
        await _release(redis, key, claim)
        raise
    stored = outcome_of(result)
    if isinstance(result, ChatError) and result.code in TRANSIENT:
        await _release(redis, key, claim)
    else:
        with redis_errors():
            await redis.set(key, _encode(stored), ex=ttl_s)
    return stored, False


async def _wait_for(redis: aioredis.Redis, key: str) -> StoredOutcome | None:
    """The stored outcome once it is there; None when the claim vanished (run it again)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEASE_MS / 1000 + 1
    while loop.time() < deadline:
        with redis_errors():
            raw = await redis.get(key)
        if raw is None:
            return None
        if not raw.startswith(PENDING):
            return _decode(raw)
        await asyncio.sleep(POLL_S)
    raise Unavailable("the first attempt of this request is still running; retry later")


async def _release(redis: aioredis.Redis, key: str, claim: bytes) -> None:
    """Give the claim up, unless its lease ran out and another request holds the key now."""
    with contextlib.suppress(Exception):  # the lease expires anyway
        await redis.eval(_RELEASE, 1, key, claim)
