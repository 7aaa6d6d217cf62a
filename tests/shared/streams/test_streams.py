"""The stream store: deltas get consecutive seqs and a replay log; an aborted stream takes no more;
the end of a stream and its final message are stored together, once."""

from __future__ import annotations

import pytest

from tests.server.test_delta_log import open_stream
from threadline.shared.records import Message, TextPart
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


async def test_deltas_are_numbered_logged_and_their_text_kept(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    seqs = [await store.streams.append(tid, sid, f'[{{"type":"text","text":"w{i} "}}]'.encode(), f"w{i} ")
            for i in range(1, 4)]
    assert seqs == [1, 2, 3]
    assert await store.streams.text(tid, sid) == "w1 w2 w3 "
    assert [seq for seq, _ in await store.streams.log(tid, sid, after=1)] == [2, 3]
    assert [seq for seq, _ in await store.streams.log(tid, sid, after=0, upto=2)] == [1, 2]
    (listed,) = await store.streams.list(tid)
    assert (listed.stream_id, listed.seq, listed.text, listed.status) == (sid, 3, "w1 w2 w3 ", "streaming")
    record = await store.streams.get(sid)
    assert record is not None and record.seq == 3 and record.status == "streaming"


async def test_an_aborted_stream_takes_no_more_deltas(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    await store.streams.append(tid, sid, b"[]", "")
    assert await store.streams.abort(tid, sid) is True
    assert await store.streams.abort(tid, sid) is False
    assert await store.streams.append(tid, sid, b"[]", "") == 0
    assert await store.streams.active_ids(tid) == []


async def test_finishing_stores_the_final_message_once(store: Store) -> None:
    tid, sid, reply = await open_stream(store)
    done = reply.__copy__()
    done.status, done.text, done.parts = "success", "answer", [TextPart(text="answer")]
    assert await store.streams.finish(tid, sid, [done]) is True
    again = done.__copy__()
    again.text = "a second, late end"
    assert await store.streams.finish(tid, sid, [again], status="aborted") is False  # e.g. the reaper, late
    got = await store.messages.get(reply.message_id)
    assert (got.status, got.text) == ("success", "answer")
    record = await store.streams.get(sid)
    assert record is not None and record.status == "finished" and record.ended_at > 0


async def test_a_stream_of_another_thread_or_gone_has_no_record(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    await store.streams.finish(tid, sid, [])
    await store.streams.expire_ended(grace_ms=0)
    assert await store.streams.get(sid) is None
    assert await store.streams.list(tid) == []
    m = Message(message_id="", thread_id="", text="x")
    assert m.order == -1  # (unsaved messages carry no order)


async def test_a_delta_sent_again_after_its_answer_was_lost_is_written_once(store: Store) -> None:
    tid, sid, _ = await open_stream(store)
    a, b = b'[{"type":"text","text":"a "}]', b'[{"type":"text","text":"b "}]'
    assert await store.streams.append(tid, sid, a, "a ", after=0) == 1
    assert await store.streams.append(tid, sid, a, "a ", after=0) == 1  # the same delta again: not written twice
    assert await store.streams.append(tid, sid, b, "b ", after=1) == 2
    assert await store.streams.text(tid, sid) == "a b "
