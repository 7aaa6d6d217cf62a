"""The index process's side of the ops list: ops are taken, not popped, so none is lost.

Taking an op moves it (atomically, LMOVE) from the shared list to this
process's own list; the batch is forgotten only once it was applied. A process
that dies leaves its list behind, and the next index process to notice that
its alive key expired moves the list back to the head of the shared one: a
crash repeats a batch (embedding is idempotent) instead of losing it.
"""

from __future__ import annotations

import logging
import os
import socket

from threadline.shared import keys
from threadline.shared.storage.client import Client, as_bytes, texts

log = logging.getLogger("threadline.workers.index")

ALIVE_MS = 3000  # an index process silent this long is taken for dead


class OpsQueue:
    def __init__(self, redis: Client, owner: str | None = None) -> None:
        self._redis = redis
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._taken = keys.vector_ops_taken(self.owner)

    async def beat(self) -> None:
        """Say this process is alive (call at least every ALIVE_MS / 3)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(keys.VECTOR_INDEXERS, self.owner)
            pipe.set(keys.vector_indexer_alive(self.owner), b"1", px=ALIVE_MS)
            await pipe.execute()

    async def take(self, most: int, timeout_s: int = 1) -> list[bytes]:
        """Wait up to ``timeout_s`` for an op, then take up to ``most`` of them (oldest first)."""
        first = await self._redis.blmove(keys.VECTOR_OPS, self._taken, timeout_s, "LEFT", "RIGHT")
        if first is None:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for _ in range(most - 1):
                pipe.lmove(keys.VECTOR_OPS, self._taken, "LEFT", "RIGHT")
            more = await pipe.execute()
        return [as_bytes(first), *(as_bytes(m) for m in more if m is not None)]

    async def done(self) -> None:
        """The ops taken were applied."""
        await self._redis.delete(self._taken)

    async def give_back(self) -> int:
        """Put the ops taken back at the end of the list (to be tried again later)."""
        return await _move_all(self._redis, self._taken, "LEFT", "RIGHT")

    async def recover(self) -> int:
        """Give the ops of dead index processes back, in front (they were first); how many."""
        moved = 0
        for owner in texts(await self._redis.smembers(keys.VECTOR_INDEXERS)):
            if owner == self.owner or await self._redis.exists(keys.vector_indexer_alive(owner)):
                continue
            count = await _move_all(self._redis, keys.vector_ops_taken(owner), "RIGHT", "LEFT")
            await self._redis.srem(keys.VECTOR_INDEXERS, owner)
            if count:
                log.warning("index process %s died holding %d ops: they are queued again", owner, count)
            moved += count
        return moved


async def _move_all(redis: Client, source: str, src_end: str, dest_end: str) -> int:
    """Move every item of ``source`` to the ops list, one atomic LMOVE at a time (never lost)."""
    moved = 0
    while await redis.lmove(source, keys.VECTOR_OPS, src_end, dest_end) is not None:
        moved += 1
    return moved
