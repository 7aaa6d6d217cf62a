from __future__ import annotations

import pytest

from threadline.shared import keys
from threadline.shared.errors import NotFound
from threadline.shared.records import Message
from threadline.shared.threads import Store
from threadline.shared.threads.threads import GONE_TTL_S

pytestmark = pytest.mark.anyio


async def test_create_get_update_thread(store: Store) -> None:
    t = await store.threads.create("alice", title="Trip", metadata={"k": 1})
    got = await store.threads.get(t.thread_id, "alice")
    assert (got.title, got.metadata, got.user_id) == ("Trip", {"k": 1}, "alice")
    await store.threads.update(t.thread_id, "alice", title="Trip to Oslo", summary="s")
    updated = await store.threads.get(t.thread_id, "alice")
    assert (updated.title, updated.summary, updated.metadata) == ("Trip to Oslo", "s", {"k": 1})
    assert updated.updated_at >= t.updated_at


async def test_list_threads_newest_first_with_cursor(store: Store) -> None:
    ids = [(await store.threads.create("alice", title=str(i))).thread_id for i in range(7)]
    await store.threads.create("bob")
    seen: list[str] = []
    cursor = None
    while True:
        _, page = await store.threads.list("alice", num_items=3, cursor=cursor)
        seen += [t.thread_id for t in page.page]
        if page.is_done:
            break
        cursor = page.continue_cursor
    assert seen == ids[::-1]


async def test_delete_thread_removes_messages_and_index(store: Store) -> None:
    t = await store.threads.create("alice")
    _, (m,) = await store.messages.save(
        t.thread_id, "alice", [Message(message_id="", thread_id="", text="x")]
    )
    await store.delete_thread(t.thread_id, "alice")
    with pytest.raises(NotFound):
        await store.threads.get(t.thread_id)
    with pytest.raises(NotFound):
        await store.messages.get(m.message_id)
    _, page = await store.threads.list("alice")
    assert page.page == []
    left = [k.decode() async for k in store.redis.scan_iter(match=f"*{t.thread_id}*")]
    gone = keys.user_thread_gone("alice", t.thread_id, str(t.created_at))
    assert left == [gone] and 0 < await store.redis.ttl(gone) <= GONE_TTL_S  # only that it is gone, for a while


async def test_other_users_thread_is_not_found(store: Store) -> None:
    t = await store.threads.create("alice")
    for call in (
        store.threads.get(t.thread_id, "bob"),
        store.threads.update(t.thread_id, "bob", title="x"),
        store.delete_thread(t.thread_id, "bob"),
    ):
        with pytest.raises(NotFound):
            await call
    assert (await store.threads.get(t.thread_id, "alice")).title == ""


async def test_delete_user_removes_all_their_threads_only(store: Store) -> None:
    for _ in range(3):
        await store.threads.create("alice")
    keep = await store.threads.create("bob")
    assert await store.delete_user("alice") == 3
    _, page = await store.threads.list("alice")
    assert page.page == []
    assert (await store.threads.get(keep.thread_id, "bob")).user_id == "bob"


async def test_list_version_rises_on_every_thread_list_change(store: Store) -> None:
    v0 = await store.threads.list_version("alice")
    t = await store.threads.create("alice")
    v1 = await store.threads.list_version("alice")
    await store.threads.update(t.thread_id, "alice", title="x")
    v2 = await store.threads.list_version("alice")
    await store.delete_thread(t.thread_id, "alice")
    v3 = await store.threads.list_version("alice")
    assert v0 < v1 < v2 < v3
