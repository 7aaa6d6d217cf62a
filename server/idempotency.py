"""Exactly-once mutations: the first outcome of a request is kept and replayed.

A request is named by an unambiguous digest of (transport, user, client, request
id). Its writes are guarded (shared.storage.guard): each write script records its
own result in the same atomic step as the change, so a resend after any crash
(a killed web process, a restarted Redis) replays the first write instead of
repeating it, and finishes whatever the first attempt had not done yet (e.g.
enqueueing the reply, which is idempotent by job id). The outcome sent to the
client is then kept for the TTL, and a later resend gets it at once. Outcomes
of transient failures (unavailable, internal) are not kept, so a retry runs again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from threadline.server.context import Context
from threadline.server.mutations import Outcome
from threadline.shared import keys
from threadline.shared.errors import ChatError
from threadline.shared.storage.client import Client, redis_errors
from threadline.shared.storage.guard import Guard

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
    redis: Client,
    ctx: Context,
    request: tuple[str, ...],
    ttl_s: int,
    execute: Callable[[Context], Awaitable[Outcome]],
) -> tuple[StoredOutcome, bool]:
    """(the outcome, whether it is a replay of an earlier one).

    ``request`` names the request (transport, client, id); the user is added
    here, so no two users' requests can share a record.
    """
    digest = keys.request_digest(*request, ctx.user_id)
    key = keys.outcome(ctx.user_id, digest)
    with redis_errors():
        raw = await redis.hget(key, "o")
    if raw is not None:
        return _decode(raw), True
    try:
        result: Outcome | ChatError = await execute(dataclasses.replace(ctx, guard=Guard(digest, ttl_s)))
    except ChatError as exc:
        result = exc
    stored = outcome_of(result)
    if not (isinstance(result, ChatError) and result.code in TRANSIENT):
        with redis_errors():
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, "o", _encode(stored))
                pipe.expire(key, ttl_s)
                await pipe.execute()
    return stored, False
