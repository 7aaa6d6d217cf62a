"""Reading an app-wide set kept one per partition (shared.keys.every_partition).

Each write lands in its writer's own slot; a reader walks every partition with one command each,
pipelined (a cluster pipeline sends each node the commands of its slots), in chunks so that no
round trip carries all of them. The sweepers' reads of due members (``due``, ``due_in``) run as one
script that walks the partitions on the node (partitions_due.lua); through a cluster client they
are pipelined like the others (until each node is given the partitions it serves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio.cluster import RedisCluster

from threadline.shared import keys
from threadline.shared.storage.client import Client, text
from threadline.shared.storage.scripts import Scripts, lua

CHUNK = 256  # commands per round trip
NUMBERS = [str(p) for p in range(keys.PARTITIONS)]  # every partition, as the walker scripts take them
PARTITIONS_DUE = lua(__file__, "partitions_due")


async def each(redis: Client, name: str, command: Callable[[Any, str], object]) -> list[Any]:
    """``command(pipe, key)`` for the key of every partition of the set ``name``; the replies, in
    partition order."""
    replies: list[Any] = []
    names = keys.every_partition(name)
    for start in range(0, len(names), CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for key in names[start:start + CHUNK]:
                command(pipe, key)
            replies += await pipe.execute()
    return replies


async def due(scripts: Scripts, name: str, upto: float, limit: int) -> list[bytes]:
    """Members of the sorted set ``name`` scored at most ``upto``: at most ``limit``, the lowest
    scored of each partition first (partitions are walked in order)."""
    return [member for _, member in await due_in(scripts, name, upto, limit)]


async def due_in(scripts: Scripts, name: str, upto: float, limit: int) -> list[tuple[str, bytes]]:
    """``due``, each member with the key of its partition."""
    if not isinstance(scripts.redis, RedisCluster):
        flat = await scripts.run(PARTITIONS_DUE, [], [name, "+inf" if upto == float("inf") else upto, limit,
                                                      *NUMBERS])
        return [(keys.in_partition(int(p), name), member) for p, member in zip(flat[0::2], flat[1::2], strict=True)]
    found: list[tuple[str, bytes]] = []
    replies = await each(scripts.redis, name,
                         lambda pipe, key: pipe.zrangebyscore(key, "-inf", upto, start=0, num=limit))
    for key, members in zip(keys.every_partition(name), replies, strict=True):
        found += [(key, member) for member in members]
        if len(found) >= limit:
            break
    return found[:limit]


async def top(redis: Client, name: str, limit: int, *, below: float | str = "+inf") -> list[tuple[str, float]]:
    """The ``limit`` highest-scored members of the sorted set ``name`` over every partition, with
    their scores, highest first; with ``below``, only those scored under it (a score bound:
    ``"(123"`` excludes 123)."""
    parts = await each(redis, name, lambda pipe, key: pipe.zrevrangebyscore(key, below, "-inf", start=0, num=limit,
                                                                            withscores=True))
    ranked = sorted(((score, text(member)) for part in parts for member, score in part), reverse=True)
    return [(member, score) for score, member in ranked[:limit]]
