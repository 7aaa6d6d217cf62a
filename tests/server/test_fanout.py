"""The change listener routes each channel's messages to the listeners that ref it; the first
ref subscribes upstream and the last unref unsubscribes; one listener's fault starves no other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from threadline.server.fanout import ChangeListener
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.resyncs = 0
        self.fail = fail

    def heard(self, channel: str, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("a broken listener")
        self.got.append((channel, data))

    def resync(self) -> None:
        self.resyncs += 1


@pytest.fixture
async def listener(store: Store) -> AsyncIterator[ChangeListener]:
    lst = ChangeListener(store.redis)
    lst.start()
    try:
        yield lst
    finally:
        await lst.stop()


async def until(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_each_channel_reaches_only_its_listeners(listener: ChangeListener, store: Store) -> None:
    a, b, broken = Recorder(), Recorder(), Recorder(fail=True)
    await listener.ref(["c1"], broken)
    await listener.ref(["c1", "c2"], a)
    await listener.ref(["c2"], b)
    await store.redis.spublish("c1", b"1")
    await store.redis.spublish("c2", b"2")
    await until(lambda: len(a.got) == 2 and len(b.got) == 1)
    assert a.got == [("c1", b"1"), ("c2", b"2")] and b.got == [("c2", b"2")]


async def test_the_last_unref_unsubscribes_upstream(listener: ChangeListener, store: Store) -> None:
    a, b = Recorder(), Recorder()
    await listener.ref(["c"], a)
    await listener.ref(["c"], b)
    listener.unref(["c"], a)
    assert listener.channels == {"c"}
    await store.redis.spublish("c", b"x")
    await until(lambda: bool(b.got))
    assert a.got == []
    listener.unref(["c"], b)
    assert listener.channels == set()
    await until(lambda: not listener.upstream())
    async with asyncio.timeout(5):  # and the server has no subscriber of it left
        while await shard_subscribers(store, "c") != 0:
            await asyncio.sleep(0.01)


async def shard_subscribers(store: Store, channel: str) -> int:
    """PUBSUB SHARDNUMSUB on the node that serves ``channel`` (asked of that node alone: redis-py 8.2's
    cluster client fails to parse the reply it gathers from a cluster)."""
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    if not isinstance(store.redis, RedisCluster):
        return int((await store.redis.execute_command("PUBSUB", "SHARDNUMSUB", channel))[1])
    owner = store.redis.get_node_from_key(channel)
    async with Redis(host=owner.host, port=owner.port) as node:
        return int((await node.execute_command("PUBSUB", "SHARDNUMSUB", channel))[1])


async def test_after_a_reconnect_every_listener_resyncs_once(listener: ChangeListener, store: Store) -> None:
    a, b = Recorder(), Recorder()
    await listener.ref(["c1", "c2"], a)
    await listener.ref(["c2"], b)
    await store.redis.client_kill_filter(_type="pubsub")
    await until(lambda: listener.reconnects >= 1)
    assert (a.resyncs, b.resyncs) == (1, 1)
    await store.redis.spublish("c2", b"after")
    await until(lambda: bool(b.got))


async def test_a_channel_refd_again_before_its_unsubscribe_went_out_stays_on(listener: ChangeListener,
                                                                            store: Store) -> None:
    a, b = Recorder(), Recorder()
    await listener.ref(["c"], a)
    listener.unref(["c"], a)  # the unsubscribe is on its way
    async with asyncio.timeout(1):  # no wait for a confirmation that never comes
        await listener.ref(["c"], b)
    await store.redis.spublish("c", b"still")
    await until(lambda: b.got == [("c", b"still")])
