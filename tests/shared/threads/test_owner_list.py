"""A thread's owner's list is changed by a follow-up in the owner's slot (shared.storage.outbox):
after a writer that died between the two steps, the sweeper does it; done twice, or in any order
with the follow-ups of a thread deleted and created again under the same id, the list ends right."""

from __future__ import annotations

import pytest

from threadline.shared import keys
from threadline.shared.errors import NotFound
from threadline.shared.storage.guard import Guard
from threadline.shared.storage.outbox import Outbox
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


class Dies(Outbox):
    """A writer that dies right after each first step: its follow-ups stay in the outbox."""

    async def follow_now(self, home: str, entry: object) -> None:
        return None


async def listed(store: Store, user_id: str) -> tuple[int, list[str]]:
    version, page = await store.threads.list(user_id, num_items=100)
    return version, [t.thread_id for t in page.page]


async def left(store: Store) -> list[tuple[str, bytes]]:
    from threadline.shared.storage import partitions

    return await partitions.due_in(store.scripts, keys.OUTBOX, float("inf"), 1000)


async def test_a_create_left_half_done_is_listed_once_by_the_sweeper(store: Store) -> None:
    store.threads._outbox = Dies(store.redis, store.scripts)
    thread = await store.threads.create("ann")
    assert await store.threads.get(thread.thread_id, "ann")  # the first step happened
    assert await listed(store, "ann") == (0, [])  # the second did not
    assert await store.outbox.sweep(older_than_ms=60_000) == 0  # too recent: its writer may still be at it
    assert await store.outbox.sweep(older_than_ms=0) == 1
    assert await listed(store, "ann") == (1, [thread.thread_id])
    assert await store.threads.users() == ["ann"]
    assert await left(store) == []
    assert await store.outbox.sweep(older_than_ms=0) == 0


async def test_a_follow_up_done_twice_changes_the_list_once(store: Store) -> None:
    store.threads._outbox = Dies(store.redis, store.scripts)
    thread = await store.threads.create("bea")
    [(home, entry)] = await left(store)
    await store.outbox.follow(home, entry)
    await store.outbox.follow(home, entry)  # the writer, then a sweeper that read it before it was removed
    assert await listed(store, "bea") == (1, [thread.thread_id])
    assert await store.redis.hget(keys.user_state("bea"), "seq") == b"1"


async def test_a_resent_create_finishes_what_the_first_began(store: Store) -> None:
    store.threads._outbox = Dies(store.redis, store.scripts)
    guard = Guard("d" * 40, ttl_s=60)
    first = await store.threads.create("cal", title="one", guard=guard)
    store.threads._outbox = store.outbox
    again = await store.threads.create("cal", title="one", guard=guard)
    assert again.thread_id == first.thread_id and again.created_at == first.created_at
    assert await listed(store, "cal") == (1, [first.thread_id])
    assert await left(store) == []


async def test_late_follow_ups_of_a_deleted_thread_do_not_bring_it_back(store: Store) -> None:
    """A client-chosen id, created (follow-up left), deleted, created again: the stale follow-ups,
    swept last, neither list the first thread nor drop the second."""
    store.threads._outbox = Dies(store.redis, store.scripts)
    first = await store.threads.create("dan", thread_id="chat_0001")
    await store.threads.update("chat_0001", "dan", title="renamed")
    store.threads._outbox = store.outbox
    await store.delete_thread("chat_0001", "dan")
    assert await listed(store, "dan") == (0, [])  # the remove ran: nothing to unlist yet, the list unchanged
    store.threads._outbox = Dies(store.redis, store.scripts)
    second = await store.threads.create("dan", thread_id="chat_0001")
    assert second.created_at > first.created_at
    assert len(await left(store)) == 3  # add (first), touch (first), add (second)
    assert await store.outbox.sweep(older_than_ms=0) == 3
    _, ids = await listed(store, "dan")
    assert ids == ["chat_0001"]
    assert await store.redis.hget(keys.user_threads_listed("dan"), "chat_0001") == str(second.created_at).encode()
    store.threads._outbox = store.outbox
    await store.delete_thread("chat_0001", "dan")
    assert (await listed(store, "dan"))[1] == []
    with pytest.raises(NotFound):
        await store.threads.get("chat_0001")


async def test_an_update_left_half_done_still_tells_the_owners_list(store: Store) -> None:
    thread = await store.threads.create("eve")
    version, _ = await listed(store, "eve")
    store.threads._outbox = Dies(store.redis, store.scripts)
    await store.threads.update(thread.thread_id, "eve", title="new title")
    assert (await listed(store, "eve"))[0] == version
    await store.outbox.sweep(older_than_ms=0)
    after, _ = await listed(store, "eve")
    assert after == version + 1
    _, page = await store.threads.list("eve")
    assert page.page[0].title == "new title"
