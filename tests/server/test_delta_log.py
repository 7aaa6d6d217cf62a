"""The delta log replays what pub/sub lost before later deltas; the reaper trims ended logs."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio.cluster import ClusterPubSub

from threadline.server.delta_log import DeltaLog
from threadline.server.reaper import StreamReaper
from threadline.shared import keys
from threadline.shared.records import Message
from threadline.shared.streams.records import DeltaNotice, StreamInfo, decode_notice
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


async def open_stream(store: Store) -> tuple[str, str, Message]:
    t = await store.threads.create("alice")
    _, (u,) = await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", text="q")])
    _, (r,) = await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", role="assistant",
                                                                      status="pending")],
                                        prompt_message_id=u.message_id)
    sid, _ = await store.streams.open(r, agent_name="a", prompt_message_id=u.message_id)
    return t.thread_id, sid, r


def seqs(parts: list[str]) -> list[str]:
    return [json.loads(p)[0]["text"] for p in parts]


async def test_a_live_delta_after_a_gap_waits_for_the_missing_ones(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    log = DeltaLog(store)
    notices = []
    for i in range(1, 5):
        parts = json.dumps([{"type": "text", "text": f"w{i} "}])
        await store.streams.append(tid, sid, parts.encode(), f"w{i} ")
        notices.append(DeltaNotice(sid, i, parts))
    log.hold(tid)  # this process now watches the thread
    assert log.add(tid, notices[0]) is True
    assert log.add(tid, notices[3]) is False  # 2 and 3 were lost on the way
    assert seqs(log.parts(tid, sid)) == ["w1 "]
    await log.caught_up(tid, sid)
    assert seqs(log.parts(tid, sid)) == ["w1 ", "w2 ", "w3 ", "w4 "] and log.gap_fills == 1
    assert log.add(tid, notices[2]) is True  # a late duplicate changes nothing
    assert len(log.parts(tid, sid)) == 4


async def test_ensure_loads_a_streams_log_up_to_its_seq_and_release_forgets(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    for _ in range(3):
        await store.streams.append(tid, sid, b'[{"type":"text","text":"x"}]', "x")
    log = DeltaLog(store)
    log.hold(tid)
    await log.ensure(tid, [StreamInfo(stream_id=sid, order=1, step_order=1, status="streaming",
                                      agent_name="a", text="xxx", seq=3)])
    assert len(log.parts(tid, sid)) == 3
    log.release(tid)
    assert log.parts(tid, sid) == [] and log.add(tid, DeltaNotice(sid, 4, "[]")) is False


async def test_the_worker_publishes_a_notice_the_log_reads(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    pubsub = store.redis.pubsub()
    await pubsub.ssubscribe(keys.delta_channel(tid))
    await store.streams.append(tid, sid, b'[{"type":"text","text":"hi"}]', "hi")
    async with asyncio.timeout(5):
        while True:
            if isinstance(pubsub, ClusterPubSub):  # (on a cluster: the shard's connection)
                msg = await pubsub.get_sharded_message(timeout=1.0)
            else:
                msg = await pubsub.get_message(timeout=1.0)
            if msg is not None and msg["type"] == "smessage":
                break
    await pubsub.aclose()
    assert decode_notice(msg["data"]) == DeltaNotice(sid, 1, '[{"type":"text","text":"hi"}]')


async def test_the_reaper_ends_silent_streams_and_trims_ended_ones_in_batches(store: Store) -> None:
    tid, sid, reply = await open_stream(store)
    await store.streams.append(tid, sid, b'[{"type":"text","text":"half"}]', "half")
    await store.redis.zadd(keys.active_streams(tid), {f"{tid}/{sid}": 1})  # last heartbeat long ago
    reaper = StreamReaper(store, stale_ms=1000, grace_ms=60_000)
    assert await reaper.sweep() == 1
    got = await store.messages.get(reply.message_id)
    assert (got.status, got.text) == ("failed", "half")
    assert (await store.streams.list(tid))[0].status == "aborted"
    assert await store.redis.exists(keys.stream_log(tid, sid))
    trimmer = StreamReaper(store, stale_ms=1000, grace_ms=0)
    await trimmer.sweep()
    assert not await store.redis.exists(*keys.stream_keys(tid, sid))
    assert await store.streams.list(tid) == []
