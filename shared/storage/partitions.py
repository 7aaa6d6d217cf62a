"""Reading an app-wide set kept one per partition (shared.keys.every_partition).

Each write lands in its writer's own slot; a reader walks every partition with one command each,
pipelined (a cluster pipeline sends each node the commands of its slots), in chunks so that no
round trip carries all of them. The sweepers' reads of due members (``due``, ``due_in``) run as one
script that walks the partitions (partitions_due.lua): on a cluster, one per primary, given the
partitions it serves (``walk``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError, SlotNotCoveredError

from threadline.shared import keys
from threadline.shared.storage.client import Client, text
from threadline.shared.storage.scripts import Arg, Script, Scripts, lua

CHUNK = 256  # commands per round trip
NUMBERS = [str(p) for p in range(keys.PARTITIONS)]  # every partition, as the walker scripts name them
SLOTS = [key_slot(keys.in_partition(p, "").encode()) for p in range(keys.PARTITIONS)]  # each one's Cluster slot
PARTITIONS_DUE = lua(__file__, "partitions_due")
WALK_TRIES = 4  # a walk meeting a slot on its way to another primary is done again (after 50, 100, 150 ms)


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


Args = Sequence[Arg] | Callable[[list[Any]], Sequence[Arg]]


def runs(parts: Sequence[str]) -> list[str]:
    """Partition numbers as a walker script takes them (partition.lua ``partitions_from``): each run
    of consecutive ones as ``"a-b"``, so that a walk of every partition sends one argument, not 1,024
    (packing those cost a worker's timer sweep most of its time)."""
    out: list[str] = []
    numbers = [int(p) for p in parts]
    start = 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or numbers[i] != numbers[i - 1] + 1:
            first, last = numbers[start], numbers[i - 1]
            out.append(str(first) if first == last else f"{first}-{last}")
            start = i
    return out


EVERY = runs(NUMBERS)  # ["0-1023"]


async def walk(scripts: Scripts, script: Script, args: Args, parts: Sequence[str] = NUMBERS) -> list[Any]:
    """Run the walker ``script`` (it names the keys of the partitions given after ``args``): on one
    node once, with every partition; on a cluster once per primary, with the partitions whose slots
    it serves, as the cluster says now (asked again, and the walk done again, when a slot moved
    meanwhile). ``args`` may be a function of the results so far giving each node's. The results,
    one per node."""
    redis = scripts.redis
    args_for = args if callable(args) else (lambda _: args)
    if not isinstance(redis, RedisCluster):
        return [await scripts.run(script, [], [*args_for([]), *(EVERY if parts is NUMBERS else runs(parts))])]
    await redis.initialize()  # (its map of slots is made by its first command: this may be the first)
    for attempt in range(1, WALK_TRIES + 1):
        owners: dict[str, tuple[Any, list[str]]] = {}
        for p in parts:  # (by slot: hashing 1,024 key names on every walk cost 1.4 ms, this 0.2)
            try:
                node = redis.nodes_manager.get_node_from_slot(SLOTS[int(p)])
            except SlotNotCoveredError:
                raise ConnectionError(f"no primary serves partition {p}") from None
            owners.setdefault(node.name, (node, []))[1].append(p)
        results: list[Any] = []
        try:
            for node, owned in owners.values():
                results.append(await scripts.run_on(node, script, [*args_for(results), *runs(owned)]))
            return results
        except ResponseError as exc:  # a slot moved, or is moving: a key of the walk is not the node's
            if attempt == WALK_TRIES or "non local key" not in str(exc).lower():
                raise
            await asyncio.sleep(0.05 * attempt)
            await redis.nodes_manager.initialize()
    raise AssertionError("unreachable")


async def due(scripts: Scripts, name: str, upto: float, limit: int) -> list[bytes]:
    """Members of the sorted set ``name`` scored at most ``upto``: at most ``limit``, the lowest
    scored of each partition first (partitions are walked in order)."""
    return [member for _, member in await due_in(scripts, name, upto, limit)]


async def due_in(scripts: Scripts, name: str, upto: float, limit: int) -> list[tuple[str, bytes]]:
    """``due``, each member with the key of its partition."""
    found: list[tuple[str, bytes]] = []
    for flat in await walk(scripts, PARTITIONS_DUE, [name, "+inf" if upto == float("inf") else upto, limit]):
        found += [(keys.in_partition(int(p), name), member) for p, member in zip(flat[0::2], flat[1::2], strict=True)]
    return sorted(found, key=lambda hit: hit[0])[:limit]


async def top(redis: Client, name: str, limit: int, *, below: float | str = "+inf") -> list[tuple[str, float]]:
    """The ``limit`` highest-scored members of the sorted set ``name`` over every partition, with
    their scores, highest first; with ``below``, only those scored under it (a score bound:
    ``"(123"`` excludes 123)."""
    parts = await each(redis, name, lambda pipe, key: pipe.zrevrangebyscore(key, below, "-inf", start=0, num=limit,
                                                                            withscores=True))
    ranked = sorted(((score, text(member)) for part in parts for member, score in part), reverse=True)
    return [(member, score) for score, member in ranked[:limit]]
