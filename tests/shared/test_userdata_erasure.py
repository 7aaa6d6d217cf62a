"""An erasure's record and lease (shared.userdata.erasure): one runner at a time, taken up again once a
runner's lease ran out, asked twice while running is one erasure, asked after it finished is a new
one; its record names no one. (Through real processes, with data in every store and a kill in the
middle: tests/scenarios/memory/test_erasure.py.)"""

from __future__ import annotations

import asyncio

import pytest

from threadline.shared import keys
from threadline.shared.config import load_settings
from threadline.shared.runtime import Runtime
from threadline.shared.threads import Store
from threadline.shared.userdata.erasure import STEPS, Erasures

pytestmark = pytest.mark.anyio


async def test_one_runner_at_a_time_and_the_next_once_its_lease_ran_out(store: Store) -> None:
    rt = Runtime(load_settings({"ERASE_LEASE_MS": "300"}), redis=store.redis)
    erasures = Erasures(rt)
    await store.threads.create("ivy")
    first = await erasures.ask("ivy", "ops")
    assert (first.status, first.step) == ("running", "schedules")
    assert await erasures.due() == ["ivy"]
    assert await erasures._take("ivy") == 0  # a runner that dies right after taking it
    assert await erasures.run("ivy") is None  # its lease still runs: left to it
    assert (await erasures.ask("ivy", "someone else")).requested_at == first.requested_at  # the same erasure
    assert await erasures.due() == []
    await asyncio.sleep(0.35)
    assert await erasures.due() == ["ivy"]
    done = await erasures.run("ivy")
    assert done is not None and (done.status, done.step, done.erased["threads"]) == ("done", "", 1)
    assert set(done.erased) == set(STEPS)
    assert await erasures.due() == [] and await erasures.run("ivy") is None
    raw = await store.redis.hgetall(keys.erasure("ivy"))
    assert b"ivy" not in keys.erasure("ivy").encode() and not any(b"ivy" in v for v in raw.values())
    again = await erasures.ask("ivy", "ops")  # asked again later: a new erasure (of what came since)
    assert again.status == "running" and again.requested_at >= done.requested_at and again.erased == {}


async def test_their_earlier_versions_in_anothers_thread_are_erased_too(store: Store) -> None:
    """An edited message's earlier version (off the branch shown) is theirs as much as the shown one."""
    from threadline.shared.records import Message, TextPart

    def said(text: str) -> Message:
        return Message(message_id="", thread_id="", text=text, parts=[TextPart(text=text)])

    rt = Runtime(load_settings({}), redis=store.redis)
    tid = (await store.threads.create("opal")).thread_id
    await store.threads.add_member(tid, "opal", "ike", "writer")
    _, (mine,) = await store.messages.save(tid, "ike", [said("ike's first words")])
    await store.messages.save(tid, "opal", [said("opal answers")])
    await store.messages.save(tid, "ike", [said("ike's words, edited")], edits=mine.message_id)
    await store.messages.switch_branch(tid, "opal", mine.order)  # the owner shows the first version
    erasures = Erasures(rt)
    await erasures.ask("ike", "ops")
    finished = await erasures.run("ike")
    assert finished is not None and finished.status == "done"
    left = list((await store.redis.hgetall(keys.messages(tid))).values())
    assert len(left) == 1 and b"opal answers" in left[0]
