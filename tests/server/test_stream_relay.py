"""The relay replays what pub/sub lost before sending later deltas; the reaper trims ended logs."""

from __future__ import annotations

import json

import pytest

from server.reaper import StreamReaper
from server.stream_relay import StreamRelay
from shared import keys
from shared.records import Message
from shared.store import Store
from shared.store.streams import StreamInfo

pytestmark = pytest.mark.anyio


class Sink:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def deliver_deltas(self, sub_id: str, stream_id: str, tails: list[str]) -> None:
        self.seen = [json.loads("{" + t[1:])["seq"] for t in tails]


async def open_stream(store: Store) -> tuple[str, str, Message]:
    t = await store.threads.create("alice")
    _, (u,) = await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", text="q")])
    _, (r,) = await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", role="assistant",
                                                                      status="pending")],
                                        prompt_message_id=u.message_id)
    sid = await store.streams.open(r, agent_name="a", prompt_message_id=u.message_id)
    return t.thread_id, sid, r


async def test_a_live_delta_after_a_gap_is_sent_only_after_the_missing_ones(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    relay = StreamRelay(store)
    payloads = []
    for i in range(1, 5):
        await store.streams.append(tid, sid, json.dumps([{"type": "text", "text": f"w{i} "}]).encode(), f"w{i} ")
        payloads.append(json.dumps({"streamId": sid, "seq": i,
                                    "parts": [{"type": "text", "text": f"w{i} "}]}).encode())
    await relay.ensure(tid, [])  # this process now watches the thread
    relay.on_delta(payloads[0])
    relay.on_delta(payloads[3])  # 2 and 3 were lost on the way
    slog = relay.logs(tid)[sid]
    assert [t for t in slog.tails] and len(slog.tails) == 1 and slog.filling is not None
    await slog.filling
    assert len(slog.tails) == 4 and relay.gap_fills == 1
    assert [json.loads("{" + t[1:])["seq"] for t in slog.tails] == [1, 2, 3, 4]
    relay.on_delta(payloads[2])  # a late duplicate changes nothing
    assert len(slog.tails) == 4


async def test_ensure_loads_a_streams_log_up_to_its_seq(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    for _ in range(3):
        await store.streams.append(tid, sid, b'[{"type":"text","text":"x"}]', "x")
    relay = StreamRelay(store)
    await relay.ensure(tid, [StreamInfo(stream_id=sid, order=1, step_order=1, status="streaming",
                                        agent_name="a", text="xxx", seq=3)])
    assert len(relay.logs(tid)[sid].tails) == 3


async def test_the_reaper_ends_silent_streams_and_trims_ended_ones_in_batches(store: Store) -> None:
    tid, sid, reply = await open_stream(store)
    await store.streams.append(tid, sid, b'[{"type":"text","text":"half"}]', "half")
    await store.redis.zadd(keys.ACTIVE_STREAMS, {f"{tid}/{sid}": 1})  # last heartbeat long ago
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
