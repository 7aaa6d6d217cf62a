"""Index ops: what the write scripts queue (packed in Lua) decodes as the IndexOp the
index process reads, in the same step as the write; a search call and its answer round-trip."""

from __future__ import annotations

import pytest

from threadline.shared import keys
from threadline.shared.indexing.ops import IndexOp, decode_op, encode_op
from threadline.shared.records import Message
from threadline.shared.threads import Store
from threadline.shared.vectors.rpc import (
    Hit,
    SearchAnswer,
    SearchCall,
    SearchRequest,
    decode_answer,
    decode_call,
    encode_answer,
    encode_call,
    hit_of,
)

pytestmark = pytest.mark.anyio


async def drain(store: Store) -> list[IndexOp | None]:
    """Every op waiting, over the partitions (each partition's in order), taken off the lists."""
    raw = [op for part in keys.every_partition(keys.VECTOR_OPS) for op in await store.redis.lrange(part, 0, -1)]
    await store.redis.delete(*keys.every_partition(keys.VECTOR_OPS))
    return [decode_op(r) for r in raw]


async def test_each_write_queues_its_op(store: Store) -> None:
    t = await store.threads.create("alice")
    tid = t.thread_id
    _, (m, _tool) = await store.messages.save(tid, "alice", [
        Message(message_id="", thread_id="", text="remember the lighthouse"),
        Message(message_id="", thread_id="", role="tool", text="tool output")])
    assert await drain(store) == [IndexOp("embed_message", m.message_id)]  # tool messages are not embedded

    await store.messages.delete([m.message_id], "alice")
    assert await drain(store) == [IndexOp("forget_message", m.message_id)]

    _, s = await store.snippets.add(tid, "alice", kind="canvas", content="draft one")
    assert await drain(store) == [IndexOp("embed_snippet", f"{tid}/{s.snippet_id}")]
    await store.snippets.delete(s.snippet_id, "alice")
    assert await drain(store) == [IndexOp("forget_snippet", s.snippet_id)]

    await store.delete_thread(tid, "alice")
    assert await drain(store) == [IndexOp("forget_thread", tid)]


async def test_ops_queued_from_python_read_the_same(store: Store) -> None:
    await store.memory.saved([Message(message_id="m1", thread_id="t1", text="x", status="success")])
    await store.memory.snippet_saved("t1", "t1.n1")
    assert await drain(store) == [IndexOp("embed_message", "m1"), IndexOp("embed_snippet", "t1/t1.n1")]


def test_an_op_of_another_version_is_not_read() -> None:
    assert decode_op(b"u:m1") is None
    assert decode_op(encode_op(IndexOp("forget_thread", "t1"))) == IndexOp("forget_thread", "t1")


def test_a_search_call_and_answer_round_trip() -> None:
    req = SearchRequest(user_id="u", thread_id="t", text="q", before_order=3, kinds=("message", "snippet"))
    call = decode_call(encode_call(SearchCall(request=req, reply="r")))
    assert call.request == req and call.reply == "r"
    hit = hit_of({"ref": "m1", "kind": "message", "userId": "u", "threadId": "t", "messageId": "m1",
                  "order": 2, "stepOrder": 0, "createdAt": 5}, 0.5)
    assert hit == Hit(kind="message", user_id="u", thread_id="t", message_id="m1", order=2, score=0.5)
    answer = decode_answer(encode_answer(SearchAnswer(ok=True, hits=[hit])))
    assert answer.hits == [hit]
