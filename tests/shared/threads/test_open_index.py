"""The index of a thread's messages not successful (pending, failed): kept by every script that
writes or deletes messages, read by status filters, and built for data of earlier layouts."""

from __future__ import annotations

import pytest
import redis

from tests.support.store import CLUSTER
from threadline.shared import keys
from threadline.shared.records import Message
from threadline.shared.storage import layout
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


def msg(text: str, status: str = "success", role: str = "user") -> Message:
    return Message(message_id="", thread_id="", role=role, text=text, status=status)  # type: ignore[arg-type]


async def open_ids(store: Store, tid: str) -> list[bytes]:
    return await store.redis.zrange(keys.message_index_open(tid), 0, -1)


async def test_status_filters_read_only_the_messages_not_successful(store: Store, redis_url: str) -> None:
    t = await store.threads.create("ann")
    tid = t.thread_id
    await store.messages.save(tid, "ann", [msg(f"fine {i}") for i in range(300)])
    _, (p,) = await store.messages.save(tid, "ann", [msg("question")])
    _, (pending, failed) = await store.messages.save(
        tid, "ann", [msg("...", "pending", "assistant"), msg("cut", "failed", "assistant")], prompt_message_id=p.message_id)
    assert sorted(await open_ids(store, tid)) == sorted([pending.message_id.encode(), failed.message_id.encode()])
    _, page = await store.messages.list(tid, "ann", statuses=["pending"])
    assert [m.message_id for m in page.page] == [pending.message_id] and page.is_done
    _, page = await store.messages.list(tid, "ann", statuses=["pending", "failed"], num_items=1)
    assert [m.message_id for m in page.page] == [failed.message_id] and not page.is_done

    pending.status, pending.text = "success", "answer"
    await store.messages.replace(tid, [pending])  # settled: it leaves the index
    assert await open_ids(store, tid) == [failed.message_id.encode()]
    failed.status = "pending"
    await store.messages.replace(tid, [failed])  # (a regenerate): still open
    await store.messages.delete([failed.message_id], "ann")
    assert await open_ids(store, tid) == []
    _, page = await store.messages.list(tid, "ann", statuses=["success"], num_items=500)
    assert len(page.page) == 302

    if CLUSTER:  # (the old layouts were of one node)
        return
    # data of layout 7 had no such index: the migration builds it
    _, (late,) = await store.messages.save(tid, "ann", [msg("later", "failed", "assistant")], prompt_message_id=p.message_id)
    sync = redis.Redis.from_url(redis_url)
    sync.delete(keys.message_index_open(tid))
    sync.set(keys.LAYOUT, 7)
    assert layout.migrate(sync) == 1
    assert await open_ids(store, tid) == [late.message_id.encode()]
    sync.close()


async def test_a_finished_stream_settles_its_reply_in_the_index(store: Store) -> None:
    t = await store.threads.create("bo")
    _, (p,) = await store.messages.save(t.thread_id, "bo", [msg("q")])
    _, (reply,) = await store.messages.save(t.thread_id, "bo", [msg("", "pending", "assistant")],
                                            prompt_message_id=p.message_id)
    sid, _ = await store.streams.open(reply, agent_name="a", prompt_message_id=p.message_id)
    assert await open_ids(store, t.thread_id) == [reply.message_id.encode()]
    reply.status, reply.text = "success", "done"
    assert await store.streams.finish(t.thread_id, sid, [reply])
    assert await open_ids(store, t.thread_id) == []
