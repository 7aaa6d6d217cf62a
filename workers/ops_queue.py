"""The index process's side of the ops lists: ops are taken, not popped, so none is lost.

Ops wait in a list per partition (keys.vector_ops). Taking an op moves it (atomically, LMOVE) to
this process's own list in the same partition; the batch is forgotten only once it was applied.
A process that dies leaves its lists behind, and the next index process to notice that its alive
key expired moves them back to the head of their partitions' lists: a crash repeats a batch
(embedding is idempotent) instead of losing it. One script call walks every partition (Redis
answers it in about a millisecond). With nothing waiting, the process waits for a writer's wake-up
(the writers publish on their partition's channel, keys.vector_ops_wake) or for its take's
timeout, then looks again; a process that does not listen looks every POLL_S.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from threadline.server.fanout import ChangeListener
from threadline.server.wakeup import Wakeup
from threadline.shared import keys
from threadline.shared.indexing.ops import OPS_RETURN, OPS_TAKE
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, as_bytes, texts
from threadline.shared.storage.scripts import Arg, Scripts

log = logging.getLogger("threadline.workers.index")

ALIVE_MS = 3000  # an index process silent this long is taken for dead
POLL_S = 0.1  # with nothing waiting and no wake-ups heard, the next look for ops


class OpsQueue:
    def __init__(self, redis: Client, owner: str | None = None) -> None:
        self._redis = redis
        self._scripts = Scripts(redis)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._taken = keys.vector_ops_taken(self.owner)
        self._holding: set[str] = set()  # partitions where this process holds taken ops
        self.waiting = 0  # ops left in the lists at the last take (the index lag)
        self._woken = Wakeup()
        self._listener: ChangeListener | None = None

    async def listen(self) -> None:
        """Hear the writers' wake-ups (sharded pub/sub, every partition's channel)."""
        self._listener = ChangeListener(self._redis)
        self._listener.start()
        await self._listener.ref(list(keys.every_partition(keys.VECTOR_OPS_WAKE)), self._woken)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()

    @property
    def wakeups(self) -> int:
        """Wake-ups heard."""
        return self._woken.notices

    async def beat(self) -> None:
        """Say this process is alive (call at least every ALIVE_MS / 3)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(keys.VECTOR_INDEXERS, self.owner)
            pipe.set(keys.vector_indexer_alive(self.owner), b"1", px=ALIVE_MS)
            await pipe.execute()

    async def take(self, most: int, timeout_s: float = 1.0) -> list[bytes]:
        """Take up to ``most`` ops (each partition's oldest first), waiting up to ``timeout_s`` for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self._woken.arm()  # before looking: a wake-up from now on is heard
            def args(so_far: list[Any]) -> list[Arg]:  # what is left to take from the next primary (0: count)
                left = most - sum((len(reply) - 1) // 2 for reply in so_far)
                return [max(left, 0), keys.VECTOR_OPS, self._taken]

            replies = await partitions.walk(self._scripts, OPS_TAKE, args)
            self.waiting = sum(int(waiting) for waiting, *_ in replies)
            flat = [item for _, *taken in replies for item in taken]
            if flat:
                self._holding.update(texts(flat[0::2]))
                return [as_bytes(op) for op in flat[1::2]]
            left = deadline - loop.time()
            if left <= 0:
                return []
            if self._listener is None:
                await self._woken.wait(min(left, POLL_S))
            elif not await self._woken.wait(left):
                return []  # nothing came: the caller's next take looks first

    async def done(self) -> None:
        """The ops taken were applied."""
        if self._holding:
            await self._redis.delete(*(keys.in_partition(int(p), self._taken) for p in self._holding))
            self._holding.clear()

    async def give_back(self) -> int:
        """Put the ops taken back at the end of their lists (to be tried again later)."""
        moved = await _move_back(self._scripts, self._taken, "LEFT", "RIGHT", sorted(self._holding))
        self._holding.clear()
        return moved

    async def recover(self) -> int:
        """Give the ops of dead index processes back, in front (they were first); how many."""
        moved = 0
        for owner in texts(await self._redis.smembers(keys.VECTOR_INDEXERS)):
            if owner == self.owner or await self._redis.exists(keys.vector_indexer_alive(owner)):
                continue
            count = await _move_back(self._scripts, keys.vector_ops_taken(owner), "RIGHT", "LEFT", partitions.NUMBERS)
            await self._redis.srem(keys.VECTOR_INDEXERS, owner)
            if count:
                log.warning("index process %s died holding %d ops: they are queued again", owner, count)
            moved += count
        return moved


async def _move_back(scripts: Scripts, taken: str, src_end: str, dest_end: str, parts: list[str]) -> int:
    """Move every op of the taken lists ``taken`` of ``parts`` to their partitions' ops lists."""
    if not parts:
        return 0
    return sum(int(n) for n in await partitions.walk(scripts, OPS_RETURN, [keys.VECTOR_OPS, taken, src_end, dest_end],
                                                      parts))
