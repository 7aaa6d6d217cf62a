"""One generation at a time per thread (the ``enqueue`` double-texting strategy)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from shared import keys

LEASE_MS = 10_000
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_EXTEND = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
           "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")


@contextlib.asynccontextmanager
async def thread_lock(redis: aioredis.Redis, thread_id: str, wait_s: float = 3600.0) -> AsyncIterator[None]:
    """Hold the thread's generation lock (waiting for the running generation to end).

    The lease is renewed while held, so a worker that dies frees it within LEASE_MS.
    """
    key, token = keys.generation_lock(thread_id), secrets.token_hex(8)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not await redis.set(key, token, nx=True, px=LEASE_MS):
        if loop.time() > deadline:
            raise TimeoutError(f"thread {thread_id} stayed busy for {wait_s}s")
        await asyncio.sleep(0.05)

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            await redis.eval(_EXTEND, 1, key, token, LEASE_MS)

    renewer = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await renewer
        with contextlib.suppress(Exception):
            await redis.eval(_RELEASE, 1, key, token)
