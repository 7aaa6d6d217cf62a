from __future__ import annotations

import asyncio

import pytest

from threadline.shared.errors import BadRequest, Conflict, NotFound
from threadline.shared.records import Message, TextPart, ToolCallPart, ToolResultPart
from threadline.shared.score import after_order
from threadline.shared.storage.client import connect
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


def user(text: str) -> Message:
    return Message(message_id="", thread_id="", role="user", text=text, parts=[TextPart(text=text)])


def reply(text: str, **kw: object) -> Message:
    return Message(message_id="", thread_id="", role="assistant", text=text, **kw)  # type: ignore[arg-type]


def tool_call() -> Message:
    return Message(message_id="", thread_id="", role="assistant",
                   parts=[ToolCallPart(tool_call_id="c1", tool_name="weather", args={"city": "Oslo"})])


def tool_result() -> Message:
    return Message(message_id="", thread_id="", role="tool",
                   parts=[ToolResultPart(tool_call_id="c1", tool_name="weather", result="sunny")])


async def test_user_messages_open_orders_and_replies_take_step_orders(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (u1,) = await store.messages.save(t.thread_id, "alice", [user("hi")])
    _, (r1, r2) = await store.messages.save(
        t.thread_id, "alice", [tool_call(), reply("done")], prompt_message_id=u1.message_id
    )
    _, (u2,) = await store.messages.save(t.thread_id, "alice", [user("again")])
    _, (r3,) = await store.messages.save(t.thread_id, "alice", [reply("late")], prompt_message_id=u1.message_id)
    assert [(m.order, m.step_order) for m in (u1, r1, r2, u2, r3)] == [
        (1, 0), (1, 1), (1, 2), (2, 0), (1, 3)
    ]
    stored = await store.messages.get(r3.message_id, "alice")
    assert (stored.order, stored.step_order, stored.text) == (1, 3, "late")


async def test_batch_with_user_messages_opens_an_order_per_user_message(store: Store) -> None:
    t = await store.threads.create("alice")
    _, saved = await store.messages.save(t.thread_id, "alice", [user("a"), reply("b"), user("c"), reply("d")])
    assert [(m.order, m.step_order) for m in saved] == [(1, 0), (1, 1), (2, 0), (2, 1)]


async def test_explicit_order_for_human_agent_reply_takes_next_step(store: Store) -> None:
    t = await store.threads.create("alice")
    await store.messages.save(t.thread_id, "alice", [user("a"), reply("b"), user("c")])
    _, (human,) = await store.messages.save(
        t.thread_id, "alice", [reply("from a person", agent_name="support")], order=1
    )
    assert (human.order, human.step_order, human.agent_name) == (1, 2, "support")
    _, (nxt,) = await store.messages.save(t.thread_id, "alice", [user("d")])
    assert nxt.order == 3


async def test_reply_without_prompt_continues_the_last_order(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (first,) = await store.messages.save(t.thread_id, "alice", [reply("welcome")])
    assert (first.order, first.step_order) == (1, 0)
    _, (u,) = await store.messages.save(t.thread_id, "alice", [user("hi")])
    _, (r,) = await store.messages.save(t.thread_id, "alice", [reply("hello")])
    assert (u.order, r.order, r.step_order) == (2, 2, 1)


async def test_fifty_concurrent_saves_from_separate_connections_get_orders_1_to_50(
    store: Store, redis_url: str
) -> None:
    t = await store.threads.create("alice")
    clients = [connect(redis_url, max_connections=1) for _ in range(50)]
    try:
        results = await asyncio.gather(*(
            Store(c).messages.save(t.thread_id, "alice", [user(f"m{i}")]) for i, c in enumerate(clients)
        ))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    orders = sorted(saved[0].order for _, saved in results)
    assert orders == list(range(1, 51))
    versions = sorted(v for v, _ in results)
    assert len(set(versions)) == 50
    _, page = await store.messages.list(t.thread_id, "alice", num_items=100)
    assert [m.order for m in page.page] == list(range(50, 0, -1))


async def test_pagination_is_newest_first_and_stays_correct_while_inserting(store: Store) -> None:
    t = await store.threads.create("alice")
    for i in range(25):
        await store.messages.save(t.thread_id, "alice", [user(f"m{i}")])
    seen: list[int] = []
    cursor = None
    while True:
        _, page = await store.messages.list(t.thread_id, "alice", num_items=7, cursor=cursor)
        seen += [m.order for m in page.page]
        await store.messages.save(t.thread_id, "alice", [user("inserted meanwhile")])
        if page.is_done:
            break
        cursor = page.continue_cursor
    assert seen == list(range(25, 0, -1))


async def test_exclude_tool_messages_and_status_filter(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (u,) = await store.messages.save(t.thread_id, "alice", [user("weather?")])
    await store.messages.save(
        t.thread_id, "alice",
        [tool_call(), tool_result(), reply("sunny", status="failed", error="cut")],
        prompt_message_id=u.message_id,
    )
    _, page = await store.messages.list(t.thread_id, "alice", exclude_tool_messages=True)
    assert [m.text for m in page.page] == ["sunny", "weather?"]
    _, page = await store.messages.list(t.thread_id, "alice", statuses=["failed"])
    assert [(m.text, m.error) for m in page.page] == [("sunny", "cut")]
    _, page = await store.messages.list(t.thread_id, "alice", num_items=1, statuses=["success"])
    assert len(page.page) == 1 and not page.is_done
    _, rest = await store.messages.list(
        t.thread_id, "alice", num_items=10, statuses=["success"], cursor=page.continue_cursor
    )
    assert len(page.page) + len(rest.page) == 3 and rest.is_done


async def test_a_filtered_read_from_an_order_stops_there(store: Store) -> None:
    """What a worker reads before it answers a prompt: that order's pending replies, not the thread's."""
    t = await store.threads.create("alice")
    prompts = []
    for i in range(4):
        _, (u,) = await store.messages.save(t.thread_id, "alice", [user(f"q{i}")])
        await store.messages.save(t.thread_id, "alice", [reply(f"a{i}", status="pending")], prompt_message_id=u.message_id)
        prompts.append(u)
    last = prompts[2]
    _, page = await store.messages.list(t.thread_id, None, cursor=after_order(last.order), statuses=["pending"],
                                        min_order=last.order)
    assert [m.text for m in page.page] == ["a2"] and page.is_done
    _, whole = await store.messages.list(t.thread_id, None, cursor=after_order(last.order), statuses=["pending"])
    assert [m.text for m in whole.page] == ["a2", "a1", "a0"]  # without it: every older order too


async def test_delete_range_is_start_inclusive_end_exclusive(store: Store) -> None:
    t = await store.threads.create("alice")
    await store.messages.save(t.thread_id, "alice", [user("1"), reply("1b"), user("2"), reply("2b"), user("3")])
    count, _ = await store.messages.delete_range(t.thread_id, "alice", start_order=1, end_order=2, end_step_order=1)
    assert count == 3
    _, page = await store.messages.list(t.thread_id, "alice")
    assert [(m.order, m.step_order) for m in page.page] == [(3, 0), (2, 1)]
    with pytest.raises(BadRequest):
        await store.messages.delete_range(t.thread_id, "alice", start_order=3, end_order=1)


async def test_delete_by_ids_reports_count_and_bumps_version(store: Store) -> None:
    t = await store.threads.create("alice")
    v1, saved = await store.messages.save(t.thread_id, "alice", [user("a"), user("b")])
    count, versions = await store.messages.delete([saved[0].message_id, saved[0].message_id], "alice")
    assert count == 1 and versions[t.thread_id] > v1
    with pytest.raises(NotFound):
        await store.messages.get(saved[0].message_id, "alice")


async def test_another_user_can_neither_read_nor_write_a_thread(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (m,) = await store.messages.save(t.thread_id, "alice", [user("secret")])
    with pytest.raises(NotFound):
        await store.messages.save(t.thread_id, "mallory", [user("x")])
    with pytest.raises(NotFound):
        await store.messages.list(t.thread_id, "mallory")
    with pytest.raises(NotFound):
        await store.messages.get(m.message_id, "mallory")
    with pytest.raises(NotFound):
        await store.messages.delete([m.message_id], "mallory")
    with pytest.raises(NotFound):
        await store.messages.delete_range(t.thread_id, "mallory", start_order=0, end_order=9)
    assert (await store.messages.get(m.message_id, "alice")).text == "secret"


async def test_saving_an_existing_message_id_conflicts_and_writes_nothing(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (m,) = await store.messages.save(t.thread_id, "alice", [user("a")])
    dup = user("b")
    dup.message_id = m.message_id
    with pytest.raises(Conflict):
        await store.messages.save(t.thread_id, "alice", [user("c"), dup])
    _, page = await store.messages.list(t.thread_id, "alice")
    assert [x.text for x in page.page] == ["a"]


async def test_replace_updates_status_and_text_in_place(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (u,) = await store.messages.save(t.thread_id, "alice", [user("q")])
    _, (r,) = await store.messages.save(
        t.thread_id, "alice", [reply("", status="pending")], prompt_message_id=u.message_id
    )
    r.status, r.text = "success", "answer"
    await store.messages.replace(t.thread_id, [r])
    got = await store.messages.get(r.message_id)
    assert (got.status, got.text, got.order, got.step_order) == ("success", "answer", 1, 1)


async def test_bad_cursor_is_a_bad_request(store: Store) -> None:
    t = await store.threads.create("alice")
    with pytest.raises(BadRequest):
        await store.messages.list(t.thread_id, "alice", cursor="abc")


async def test_a_guarded_save_happens_once_and_replays_its_ids_and_orders(store: Store) -> None:
    from threadline.shared.storage.guard import Guard

    t = await store.threads.create("alice")
    guard = Guard("d" * 40, 3600)
    v1, (first,) = await store.messages.save(t.thread_id, "alice", [user("hi")], guard=guard)
    v2, (again,) = await store.messages.save(t.thread_id, "alice", [user("hi")], guard=guard)
    assert (again.message_id, again.order, v2) == (first.message_id, first.order, v1)
    _, page = await store.messages.list(t.thread_id, "alice")
    assert [m.message_id for m in page.page] == [first.message_id]
    # another request is another save
    _, (other,) = await store.messages.save(t.thread_id, "alice", [user("hi")], guard=Guard("e" * 40, 3600))
    assert other.order == first.order + 1


async def test_metadata_is_saved_set_cleared_and_kept_when_a_writer_replaces_the_body(store: Store) -> None:
    """A message's metadata rides at the end of its body; a worker writing the reply again (replace,
    or the stream's end) from its own copy, which has none, keeps what was set meanwhile."""
    t = await store.threads.create("alice")
    tid = t.thread_id
    _, (u,) = await store.messages.save(tid, "alice", [Message(message_id="", thread_id="", role="user", text="hi",
                                                               metadata={"from": "web", "n": [1, 2]})])
    assert (await store.messages.get(u.message_id)).metadata == {"from": "web", "n": [1, 2]}
    _, (r,) = await store.messages.save(tid, None, [reply("", status="pending")], prompt_message_id=u.message_id)
    stream_id, _ = await store.streams.open(r, agent_name="a", prompt_message_id=u.message_id)
    v0 = await store.threads.version(tid)
    version, got = await store.messages.set_metadata(r.message_id, {"staff": {"name": "Ana", "avatar": "/a.png"}},
                                                     "alice")
    assert version == v0 + 1 and got.metadata == {"staff": {"name": "Ana", "avatar": "/a.png"}}
    r.text, r.status = "partial", "pending"
    await store.messages.replace(tid, [r])  # the worker's copy: no metadata
    assert (await store.messages.get(r.message_id)).metadata == {"staff": {"name": "Ana", "avatar": "/a.png"}}
    await store.messages.set_metadata(r.message_id, {"staff": {"name": "Bo"}, "note": '","metadata":{}}'})
    r.text, r.status = "done", "success"
    assert await store.streams.finish(tid, stream_id, [r])
    final = await store.messages.get(r.message_id)
    assert (final.text, final.metadata) == ("done", {"staff": {"name": "Bo"}, "note": '","metadata":{}}'})
    _, cleared = await store.messages.set_metadata(r.message_id, None)
    assert cleared.metadata is None and cleared.text == "done"
    r.text = "again"
    await store.messages.replace(tid, [r])
    assert (await store.messages.get(r.message_id)).metadata is None


async def test_metadata_is_bounded_owned_and_goes_with_its_message(store: Store) -> None:
    from threadline.shared import keys

    t = await store.threads.create("alice")
    big = {"x": "y" * 9000}
    before = await store.threads.version(t.thread_id)
    with pytest.raises(BadRequest, match="8192 bytes"):
        await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", metadata=big)])
    assert await store.threads.version(t.thread_id) == before  # nothing saved
    _, (u,) = await store.messages.save(t.thread_id, "alice", [user("hi")])
    with pytest.raises(BadRequest, match="8192 bytes"):
        await store.messages.set_metadata(u.message_id, big, "alice")
    with pytest.raises(NotFound):
        await store.messages.set_metadata(u.message_id, {"a": 1}, "mallory")
    assert (await store.messages.get(u.message_id)).metadata is None
    await store.messages.set_metadata(u.message_id, {"a": 1}, "alice")
    assert await store.redis.hexists(keys.message_metadata(t.thread_id), u.message_id)
    await store.messages.delete([u.message_id], "alice")
    assert not await store.redis.hexists(keys.message_metadata(t.thread_id), u.message_id)
    with pytest.raises(NotFound):
        await store.messages.set_metadata(u.message_id, {"a": 2}, "alice")


async def test_a_body_stored_before_metadata_existed_takes_it(store: Store) -> None:
    """Bodies written by earlier versions end without the field: setting metadata adds it."""
    from threadline.shared import keys

    t = await store.threads.create("alice")
    _, (u,) = await store.messages.save(t.thread_id, "alice", [user("old")])
    body = await store.redis.hget(keys.messages(t.thread_id), u.message_id)
    assert body.endswith(b',"metadata":null}')
    await store.redis.hset(keys.messages(t.thread_id), u.message_id, body[: -len(b',"metadata":null}')] + b"}")
    assert (await store.messages.get(u.message_id)).metadata is None
    _, got = await store.messages.set_metadata(u.message_id, {"v": 1})
    assert (got.text, got.metadata) == ("old", {"v": 1})
