"""Shared threads (shared.threads.threads): an owner lets members in as writers or readers. Each
write script checks the caller's role in its own atomic step; a member's own list holds the thread,
kept by follow-ups that end right in any order, after a rejoin, and after the thread is deleted."""

from __future__ import annotations

import msgspec
import pytest

from tests.shared.threads.test_owner_list import Dies, left, listed
from threadline.shared import keys
from threadline.shared.errors import Conflict, Forbidden, NotFound
from threadline.shared.records import Message, TextPart
from threadline.shared.threads import Store
from threadline.shared.threads.threads import MAX_MEMBERS

pytestmark = pytest.mark.anyio


def said(text: str) -> Message:
    return Message(message_id="", thread_id="", text=text, parts=[TextPart(text=text)])


async def shared(store: Store) -> str:
    thread = await store.threads.create("owen", title="plans")
    await store.threads.add_member(thread.thread_id, "owen", "wren", "writer")
    await store.threads.add_member(thread.thread_id, "owen", "rhea", "reader")
    return thread.thread_id


async def test_members_see_it_in_their_lists_and_in_the_thread(store: Store) -> None:
    tid = await shared(store)
    assert (await listed(store, "wren"))[1] == [tid]
    assert (await listed(store, "rhea"))[1] == [tid]
    thread = await store.threads.get(tid, "rhea")
    assert [(m.user_id, m.role) for m in thread.members] == [("wren", "writer"), ("rhea", "reader")]
    assert thread.user_id == "owen"
    with pytest.raises(NotFound):
        await store.threads.get(tid, "zed")  # not theirs to see: as if it were not there


async def test_a_writer_writes_as_themself_and_a_reader_cannot(store: Store) -> None:
    tid = await shared(store)
    _, (saved,) = await store.messages.save(tid, "wren", [said("hi all")])
    assert saved.user_id == "wren"
    assert (await store.messages.get(saved.message_id, "rhea")).user_id == "wren"
    _, page = await store.messages.list(tid, "rhea")
    assert [m.text for m in page.page] == ["hi all"]
    with pytest.raises(Forbidden):
        await store.messages.save(tid, "rhea", [said("me too")])
    with pytest.raises(NotFound):
        await store.messages.save(tid, "zed", [said("let me in")])
    with pytest.raises(Forbidden):
        await store.messages.set_metadata(saved.message_id, {"x": 1}, "rhea")
    with pytest.raises(Forbidden):
        await store.snippets.add(tid, "rhea", kind="note", content="mine")
    await store.snippets.add(tid, "wren", kind="note", content="ours")
    # the owner's things stay the owner's
    for attempt in (store.threads.update(tid, "wren", title="mine now"),
                    store.messages.delete([saved.message_id], "wren"),
                    store.messages.delete_range(tid, "wren", start_order=0, end_order=9),
                    store.threads.add_member(tid, "wren", "zed", "writer")):
        with pytest.raises(Forbidden):
            await attempt
    with pytest.raises(NotFound):
        await store.delete_thread(tid, "wren")
    _, page = await store.messages.list(tid, "owen")
    assert [m.text for m in page.page] == ["hi all"]  # nothing refused changed anything
    assert (await store.threads.get(tid)).title == "plans"


async def test_a_role_change_and_a_removal_take_effect_at_once(store: Store) -> None:
    tid = await shared(store)
    await store.threads.add_member(tid, "owen", "rhea", "writer")
    await store.messages.save(tid, "rhea", [said("now I can")])
    version, changed = await store.threads.add_member(tid, "owen", "rhea", "writer")
    assert not changed and version == await store.threads.version(tid)  # the same again: nothing
    await store.threads.remove_member(tid, "owen", "rhea")
    with pytest.raises(NotFound):
        await store.messages.save(tid, "rhea", [said("still here?")])
    with pytest.raises(NotFound):
        await store.messages.list(tid, "rhea")
    assert (await listed(store, "rhea"))[1] == []
    # a member leaves by themself; an outsider cannot take anyone out
    with pytest.raises(NotFound):
        await store.threads.remove_member(tid, "zed", "wren")
    await store.threads.remove_member(tid, "wren", "wren")
    assert (await listed(store, "wren"))[1] == []
    assert (await store.threads.get(tid)).members == []


async def test_the_owner_is_no_member_and_members_are_bounded(store: Store) -> None:
    tid = await shared(store)
    with pytest.raises(Conflict):
        await store.threads.add_member(tid, "owen", "owen", "reader")
    for i in range(MAX_MEMBERS - 2):
        await store.threads.add_member(tid, "owen", f"u{i}", "reader")
    with pytest.raises(Conflict):
        await store.threads.add_member(tid, "owen", "one-too-many", "reader")
    await store.threads.remove_member(tid, "owen", "u0")
    await store.threads.add_member(tid, "owen", "one-too-many", "reader")  # room again


async def test_a_thread_deleted_leaves_every_members_list(store: Store) -> None:
    tid = await shared(store)
    await store.delete_thread(tid, "owen")
    for user in ("owen", "wren", "rhea"):
        assert (await listed(store, user))[1] == []
    assert await left(store) == []


async def test_touches_reach_members_lists(store: Store) -> None:
    tid = await shared(store)
    before, _ = await listed(store, "wren")
    await store.threads.update(tid, "owen", title="renamed")
    after, page = await listed(store, "wren")
    assert after > before and page == [tid]


async def test_leave_and_rejoin_with_follow_ups_late_and_out_of_order(store: Store) -> None:
    """The member's list follows the last join, whatever order the follow-ups run in: a join's
    follow-up that comes after a later leave lists nothing; a leave's that comes after a later join
    unlists nothing."""
    thread = await store.threads.create("owen")
    tid = thread.thread_id
    home = keys.outbox(tid)
    store.threads._outbox = Dies(store.redis, store.scripts)

    async def last(op: str) -> bytes:  # the follow-up just left that lists or unlists wren
        found = [e for _, e in await left(store) if msgspec.msgpack.decode(e)[:3] == ["threads.user", op, "wren"]]
        [entry] = [e for e in found if e not in seen]
        seen.add(entry)
        return entry

    seen: set[bytes] = set()
    await store.threads.add_member(tid, "owen", "wren", "writer")
    join1 = await last("add")
    await store.threads.remove_member(tid, "owen", "wren")
    leave1 = await last("remove")
    await store.threads.add_member(tid, "owen", "wren", "reader")
    join2 = await last("add")
    for entry in (join2, leave1, join1):  # newest first
        await store.outbox.follow(home, entry)
    assert (await listed(store, "wren"))[1] == [tid]
    await store.threads.remove_member(tid, "owen", "wren")
    await store.outbox.follow(home, await last("remove"))
    await store.outbox.follow(home, join2)  # late: done already, and the member left since
    assert (await listed(store, "wren"))[1] == []
    await store.outbox.sweep(older_than_ms=0)  # the rest (the lists' touches) change nothing of it
    assert (await listed(store, "wren"))[1] == []
    assert (await listed(store, "owen"))[1] == [tid]


async def test_delete_user_leaves_shared_threads_and_deletes_owned_ones(store: Store) -> None:
    tid = await shared(store)
    own = await store.threads.create("wren")
    assert await store.delete_user("wren") == 1
    assert (await store.threads.get(tid)).members[0].user_id == "rhea"
    with pytest.raises(NotFound):
        await store.threads.get(own.thread_id)
    assert (await listed(store, "wren"))[1] == []
