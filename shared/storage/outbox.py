"""Follow-ups of writes that span two slots: recorded with the first step, done exactly once.

A write that must change two entities (a thread and its owner's list) changes the first in one
atomic step that also adds a follow-up to the outbox of its partition (``keys.outbox``, an app-wide
sorted set kept one per partition: entry -> when it was written). The writer then does the
follow-up at once and removes it; a writer that dies in between leaves it for the sweeper, which
does the follow-ups older than ``DELAY_MS``. A follow-up is idempotent by construction (it may run
twice: the writer and the sweeper, or a crash after it ran and before it was removed), so the
second step happens exactly once in effect.

An entry is a msgpack array ``[kind, args...]``, packed by the first step's Lua script
(``cmsgpack.pack``); each kind has a handler registered by the feature that owns it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.faults import crash_point
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, as_bytes, redis_errors
from threadline.shared.storage.scripts import Scripts

log = logging.getLogger(__name__)

DELAY_MS = 5000  # a follow-up this old was left by a writer that died (the writer does it in ms)

Handler = Callable[[Client, Scripts, list[Any]], Awaitable[None]]
_HANDLERS: dict[str, Handler] = {}
_decode = msgspec.msgpack.Decoder(list[Any]).decode


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the handler of one kind of follow-up (at import of the feature that owns it)."""
    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


class Outbox:
    def __init__(self, redis: Client, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def follow(self, home: str, entry: bytes) -> None:
        """Do the follow-up ``entry`` recorded in ``home`` (an outbox key), then remove it."""
        kind, *args = _decode(entry)
        crash_point(f"follow:{kind}")  # fault tests: the writer dies between its two steps
        fn = _HANDLERS.get(str(kind))
        if fn is None:  # a kind of a newer version: its writer's version will sweep it
            log.warning("no handler for follow-up %r: left in %s", kind, home)
            return
        await fn(self._redis, self._scripts, args)
        with redis_errors():
            await self._redis.zrem(home, entry)

    async def follow_now(self, home: str, entry: object) -> None:
        """``follow`` right after the first step; a failure is logged and left to the sweeper (the
        first step happened: the request succeeded)."""
        try:
            await self.follow(home, as_bytes(entry))
        except Exception:
            log.exception("a follow-up failed; the outbox sweeper will do it")

    async def follow_all(self, home: str, entries: Iterable[object]) -> None:
        """``follow_now`` each of the follow-ups a first step recorded in ``home``, in order."""
        for entry in entries:
            await self.follow_now(home, entry)

    async def sweep(self, older_than_ms: int = DELAY_MS, limit: int = 100) -> int:
        """Do the follow-ups left behind longer than ``older_than_ms``; how many were done."""
        with redis_errors():
            found = await partitions.due_in(self._scripts, keys.OUTBOX, now_ms() - older_than_ms, limit)
        done = 0
        for home, entry in found:
            try:
                await self.follow(home, entry)
                done += 1
            except Exception:
                log.exception("a follow-up left in %s failed; tried again next sweep", home)
        return done
