"""The change listener on a 3-primary cluster: it reads every primary it needs, follows a slot that
moves to another primary (only that slot's listeners resync), and a connection lost to one primary
resyncs only the listeners of that primary's channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from tests.server.test_fanout import Recorder, until
from tests.support.cluster import local_cluster, move_slot, owner_of
from threadline.server.fanout import ChangeListener
from threadline.shared import keys

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with local_cluster(tmp_path_factory.mktemp("cluster")) as found:
        yield found


@pytest.fixture
async def client(ports: list[int]) -> AsyncIterator[RedisCluster]:
    c = RedisCluster(host="127.0.0.1", port=ports[0])
    await c.initialize()
    try:
        yield c
    finally:
        await c.aclose()


@pytest.fixture
async def listener(client: RedisCluster) -> AsyncIterator[ChangeListener]:
    lst = ChangeListener(client)
    lst.start()
    try:
        yield lst
    finally:
        await lst.stop()


def one_channel_per_primary(ports: list[int], prefix: str) -> dict[int, str]:
    """A thread's change channel on each primary."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < len(ports):
        ch = keys.thread_channel(f"{prefix}{i}")
        found.setdefault(owner_of(ports, key_slot(ch.encode())), ch)
        i += 1
    return found


async def test_it_hears_channels_on_every_primary(ports: list[int], client: RedisCluster,
                                                  listener: ChangeListener) -> None:
    channels = one_channel_per_primary(ports, "every")
    rec = Recorder()
    await listener.ref(list(channels.values()), rec)
    for port, ch in channels.items():
        await client.spublish(ch, str(port))
    await until(lambda: len(rec.got) == 3)
    assert sorted(rec.got) == sorted((ch, str(port).encode()) for port, ch in channels.items())
    assert len(listener._nodes) == 3


async def test_a_moved_slot_is_followed_and_only_its_listeners_resync(ports: list[int], client: RedisCluster,
                                                                      listener: ChangeListener) -> None:
    channels = one_channel_per_primary(ports, "moving")
    moving, staying = channels[ports[0]], channels[ports[1]]
    a, b = Recorder(), Recorder()
    await listener.ref([moving], a)
    await listener.ref([staying], b)
    slot = key_slot(moving.encode())
    await asyncio.to_thread(move_slot, ports, slot, ports[2])
    await until(lambda: listener.moves == 1 and a.resyncs == 1)
    assert b.resyncs == 0
    with redis.Redis(port=ports[2]) as new_owner:  # subscribed on the new owner now
        assert new_owner.execute_command("PUBSUB", "SHARDNUMSUB", moving)[1] == 1  # type: ignore[no-untyped-call]
    await client.spublish(moving, b"after the move")  # (the client follows the MOVED reply)
    await client.spublish(staying, b"still here")
    await until(lambda: a.got == [(moving, b"after the move")] and b.got == [(staying, b"still here")])
    await asyncio.to_thread(move_slot, ports, slot, ports[0])  # back, for the other tests
    await until(lambda: listener.moves == 2 and a.resyncs == 2)


async def test_a_lost_connection_to_one_primary_resyncs_only_its_channels(ports: list[int], client: RedisCluster,
                                                                           listener: ChangeListener) -> None:
    channels = one_channel_per_primary(ports, "lost")
    a, b = Recorder(), Recorder()
    await listener.ref([channels[ports[0]]], a)
    await listener.ref([channels[ports[1]]], b)
    with redis.Redis(port=ports[0]) as node:
        node.client_kill_filter(_type="pubsub")
    await until(lambda: listener.reconnects == 1 and a.resyncs == 1)
    assert b.resyncs == 0
    await client.spublish(channels[ports[0]], b"back")
    await until(lambda: a.got == [(channels[ports[0]], b"back")])
