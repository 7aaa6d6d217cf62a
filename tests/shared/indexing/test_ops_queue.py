"""The index process's ops lists, one per partition: ops of many partitions are taken in one call,
forgotten once applied, given back when applying failed, and a dead process's go back in front."""

from __future__ import annotations

import asyncio

import pytest

from threadline.shared import keys
from threadline.shared.indexing.ops import IndexOp, MemoryOps, decode_op, waiting
from threadline.shared.records import Message
from threadline.shared.threads import Store
from threadline.workers.ops_queue import OpsQueue

pytestmark = pytest.mark.anyio
THREADS = [f"t{i:03d}" for i in range(40)]


async def queue_one_each(store: Store) -> None:
    ops = MemoryOps(store.redis)
    for tid in THREADS:
        await ops.push(tid, [IndexOp("forget_thread", tid)])


def refs(raw: list[bytes]) -> list[str]:
    return [op.ref for op in map(decode_op, raw) if op is not None]


async def test_ops_of_every_partition_are_taken_and_forgotten_once_applied(store: Store) -> None:
    assert len({keys.partition(t) for t in THREADS}) > 30
    await queue_one_each(store)
    assert await waiting(store.redis) == 40
    queue = OpsQueue(store.redis, owner="a")
    first = await queue.take(25)
    assert len(first) == 25 and queue.waiting == 15 and await waiting(store.redis) == 15
    rest = await queue.take(100)
    assert sorted(refs(first + rest)) == THREADS and queue.waiting == 0
    await queue.done()
    assert await queue.take(10, timeout_s=0.2) == []
    assert not [k async for k in store.redis.scan_iter(match="*vec:taken*")]


async def test_ops_that_failed_go_back_to_the_end(store: Store) -> None:
    await queue_one_each(store)
    queue = OpsQueue(store.redis, owner="a")
    taken = await queue.take(40)
    assert await queue.give_back() == 40
    assert await waiting(store.redis) == 40
    assert sorted(refs(await queue.take(40))) == sorted(refs(taken))


async def test_a_dead_processs_ops_go_back_in_front(store: Store) -> None:
    await queue_one_each(store)
    dead = OpsQueue(store.redis, owner="dead")
    await dead.beat()
    held = refs(await dead.take(40))
    await store.redis.delete(keys.vector_indexer_alive("dead"))  # its alive key expired
    await MemoryOps(store.redis).push(THREADS[0], [IndexOp("forget_thread", "later")])
    alive = OpsQueue(store.redis, owner="alive")
    assert await alive.recover() == 40
    again = refs(await alive.take(41))
    assert sorted(again) == sorted([*held, "later"])
    home = [r for r in again if keys.partition(r) == keys.partition(THREADS[0]) or r == "later"]
    assert home[-1] == "later"  # the dead process's op of that partition comes before the one queued since


async def test_the_scripts_name_partitions_as_python_does(store: Store) -> None:
    await MemoryOps(store.redis).push("t1", [IndexOp("forget_thread", "t1")])
    assert await store.redis.llen(keys.vector_ops("t1")) == 1  # where the write scripts and Python put it
    queue = OpsQueue(store.redis, owner="x")
    assert refs(await queue.take(5)) == ["t1"]
    assert await store.redis.llen(keys.in_partition(keys.partition("t1"), keys.vector_ops_taken("x"))) == 1


async def test_a_listening_process_is_woken_by_the_writers(store: Store) -> None:
    """Waiting for ops, it looks again when a write script or Python queues one (not at its timeout)."""
    assert keys.vector_ops_wake("t1") == keys.vector_ops("t1") + ":wake"  # the channel queue_op (Lua) names
    queue = OpsQueue(store.redis, owner="w")
    await queue.listen()
    try:
        waiter = asyncio.create_task(queue.take(10, timeout_s=60))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        thread = await store.threads.create("ann")
        await store.messages.save(thread.thread_id, "ann", [Message(message_id="", thread_id="", text="hello")])
        got = await asyncio.wait_for(waiter, 30)
        assert [op.kind for op in map(decode_op, got) if op is not None] == ["embed_message"]
        assert queue.wakeups == 1  # one publish per script and list
        await queue.done()
        waiter = asyncio.create_task(queue.take(10, timeout_s=60))
        await asyncio.sleep(0.3)
        await MemoryOps(store.redis).push("t2", [IndexOp("forget_thread", "t2")])
        assert refs(await asyncio.wait_for(waiter, 30)) == ["t2"] and queue.wakeups == 2
    finally:
        await queue.close()
