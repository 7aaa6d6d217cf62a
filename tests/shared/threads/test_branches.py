"""Edit and branch (shared/threads/lua/branches.lua): a new version of a user message opens a turn
beside the old one; the thread's indexes hold the active branch only, every read (pages, status
filters, the agent's context) sees that branch, and a switch brings another back whole, flags and all."""

from __future__ import annotations

import pytest

from threadline.shared import keys
from threadline.shared.errors import Conflict, Forbidden, NotFound
from threadline.shared.records import Message, Status, TextPart, ToolCallPart
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


def user(text: str) -> Message:
    return Message(message_id="", thread_id="", role="user", text=text, parts=[TextPart(text=text)])


def reply(text: str, status: Status = "success") -> Message:
    return Message(message_id="", thread_id="", role="assistant", text=text, parts=[TextPart(text=text)],
                   status=status)


async def texts(store: Store, tid: str, **kw: object) -> list[str]:
    _, page = await store.messages.list(tid, None, num_items=100, **kw)  # type: ignore[arg-type]
    return [m.text for m in reversed(page.page)]


async def conversation(store: Store, owner: str = "ada") -> tuple[str, list[Message]]:
    """Three turns, each a prompt and its answer."""
    tid = (await store.threads.create(owner)).thread_id
    prompts = []
    for n in (1, 2, 3):
        _, (p,) = await store.messages.save(tid, owner, [user(f"q{n}")])
        await store.messages.save(tid, None, [reply(f"a{n}")], prompt_message_id=p.message_id)
        prompts.append(p)
    return tid, prompts


async def test_a_thread_never_edited_has_no_branches_and_no_tree(store: Store) -> None:
    tid, _ = await conversation(store)
    assert await store.messages.branches(tid, "ada") == (await store.threads.version(tid), [])
    assert not await store.redis.exists(keys.turns(tid), keys.message_index_hidden(tid))


async def test_an_edit_shows_the_new_version_and_keeps_the_old_one_as_a_branch(store: Store) -> None:
    tid, (_, q2, _) = await conversation(store)
    _, (q2b,) = await store.messages.save(tid, "ada", [user("q2 again")], edits=q2.message_id)
    assert q2b.order == 4
    assert await texts(store, tid) == ["q1", "a1", "q2 again"]
    _, forks = await store.messages.branches(tid, "ada")
    assert [(f.parent_order, [(v.order, v.message_id, v.active) for v in f.versions]) for f in forks] == [
        (1, [(2, q2.message_id, False), (4, q2b.message_id, True)])]
    await store.messages.save(tid, None, [reply("a2 again")], prompt_message_id=q2b.message_id)
    await store.messages.save(tid, "ada", [user("q5")])
    assert await texts(store, tid) == ["q1", "a1", "q2 again", "a2 again", "q5"]
    # back to the first version: it comes back with all that followed it
    version, leaf = await store.messages.switch_branch(tid, "ada", 2)
    assert leaf == 3 and version == await store.threads.version(tid)
    assert await texts(store, tid) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert [v.active for v in (await store.messages.branches(tid, "ada"))[1][0].versions] == [True, False]
    # and to the second: down to its newest turn
    assert (await store.messages.switch_branch(tid, "ada", 4))[1] == 5
    assert await texts(store, tid) == ["q1", "a1", "q2 again", "a2 again", "q5"]
    assert (await store.messages.switch_branch(tid, "ada", 4))[0] == await store.threads.version(tid)  # (shown: nothing)


async def test_a_reply_to_a_version_left_behind_lands_on_its_branch_with_its_flags(store: Store) -> None:
    tid, (q1, _, q3) = await conversation(store)
    _, (pending,) = await store.messages.save(tid, None, [reply("", "pending")], prompt_message_id=q3.message_id)
    await store.messages.save(tid, "ada", [user("q1 again")], edits=q1.message_id)
    # the reply running for q3 goes on: its steps and its end stay on the branch they answer
    tool = Message(message_id="", thread_id="", role="assistant", parts=[
        ToolCallPart(tool_call_id="c1", tool_name="lookup", args={})], status="pending")
    await store.messages.save(tid, None, [tool], prompt_message_id=q3.message_id)
    pending.text, pending.parts = "late", [TextPart(text="late")]
    await store.messages.replace(tid, [pending])
    assert await texts(store, tid) == ["q1 again"]
    assert await texts(store, tid, statuses=["pending"]) == []
    await store.messages.switch_branch(tid, "ada", 1)
    assert await texts(store, tid) == ["q1", "a1", "q2", "a2", "q3", "a3", "late", ""]
    assert await texts(store, tid, statuses=["pending"]) == ["late", ""]  # (the open index, restored)
    assert await texts(store, tid, exclude_tool_messages=True) == ["q1", "a1", "q2", "a2", "q3", "a3", "late"]


async def test_a_send_after_a_switch_follows_the_branch_shown(store: Store) -> None:
    tid, (_, q2, _) = await conversation(store)
    await store.messages.save(tid, "ada", [user("q2 again")], edits=q2.message_id)
    await store.messages.switch_branch(tid, "ada", 2)
    _, (q6,) = await store.messages.save(tid, "ada", [user("after a3")])
    assert q6.order == 5
    assert await texts(store, tid) == ["q1", "a1", "q2", "a2", "q3", "a3", "after a3"]
    await store.messages.switch_branch(tid, "ada", 4)
    assert await texts(store, tid) == ["q1", "a1", "q2 again"]
    await store.messages.switch_branch(tid, "ada", 2)  # the newest under it: the send after the switch
    assert (await texts(store, tid))[-1:] == ["after a3"]
    # an edit of an edit: versions of the same message are one fork
    _, (q2c,) = await store.messages.save(tid, "ada", [user("q2, third")], edits=q2.message_id)
    _, forks = await store.messages.branches(tid, "ada")
    assert [[v.order for v in f.versions] for f in forks] == [[2, 4, 6]]
    assert forks[0].active.message_id == q2c.message_id


async def test_who_may_edit_and_switch_and_what_cannot_be(store: Store) -> None:
    tid, (_, _, q3) = await conversation(store)
    await store.threads.add_member(tid, "ada", "rex", "reader")
    await store.messages.save(tid, "ada", [user("q3 again")], edits=q3.message_id)
    with pytest.raises(Conflict, match="not on the active branch"):
        await store.messages.save(tid, "ada", [user("q3, third")], edits=q3.message_id)
    with pytest.raises(Forbidden):
        await store.messages.switch_branch(tid, "rex", 3)
    with pytest.raises(NotFound):
        await store.messages.switch_branch(tid, "zed", 3)
    with pytest.raises(NotFound):
        await store.messages.switch_branch(tid, "ada", 99)
    with pytest.raises(NotFound):
        await store.messages.branches(tid, "zed")
    assert len((await store.messages.branches(tid, "rex"))[1]) == 1  # a reader sees the versions


async def test_deletes_take_every_branch_in_their_range_and_the_thread_takes_its_tree(store: Store) -> None:
    tid, (_, q2, _) = await conversation(store)
    await store.messages.save(tid, "ada", [user("q2 again")], edits=q2.message_id)
    count, _ = await store.messages.delete_range(tid, "ada", start_order=2, end_order=4)
    assert count == 4  # q2 a2 q3 a3, off the branch shown
    assert await store.redis.zcard(keys.message_index_hidden(tid)) == 0
    assert await texts(store, tid) == ["q1", "a1", "q2 again"]
    assert (await store.messages.branches(tid, "ada"))[1] == []  # a version with no message left is none
    await store.delete_thread(tid, "ada")
    own = keys.thread(tid).removesuffix(":thread")  # (its owner's list keeps a mark of its going)
    assert [k async for k in store.redis.scan_iter(match=f"{own}:*")] == []
