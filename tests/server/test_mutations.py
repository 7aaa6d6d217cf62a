"""Mutations in-process: each writes through the store, returns its value and the channels
it changed; bad input and other users' threads are refused with clear errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from threadline.server.context import Context
from threadline.server.mutations import MUTATIONS, Outcome
from threadline.shared import keys
from threadline.shared.errors import BadRequest, NotFound, Unavailable

pytestmark = pytest.mark.anyio


async def call(ctx: Context, name: str, **args: Any) -> Outcome:
    m = MUTATIONS[name]
    return await m.handler(ctx, msgspec.convert(args, m.args_type))


async def test_a_thread_from_creation_to_deletion(as_user: Callable[[str], Context]) -> None:
    alice = as_user("alice")
    made = await call(alice, "threads.create", title="Trip")
    tid = made.value["threadId"]
    assert made.channels == [keys.user_channel("alice")]
    renamed = await call(alice, "threads.update", threadId=tid, title="Trip to Oslo")
    assert renamed.value.title == "Trip to Oslo" and keys.thread_channel(tid) in renamed.channels
    sent = await call(alice, "messages.send", threadId=tid, prompt="hello", generate=False)
    assert sent.value["order"] == 1 and sent.channels == [keys.thread_channel(tid)]
    await call(alice, "threads.delete", threadId=tid)
    with pytest.raises(NotFound):
        await alice.store.threads.get(tid)


async def test_sends_are_checked(as_user: Callable[[str], Context]) -> None:
    alice, mallory = as_user("alice"), as_user("mallory")
    tid = (await call(alice, "threads.create")).value["threadId"]
    with pytest.raises(BadRequest):
        await call(alice, "messages.send", threadId=tid, prompt="   ", generate=False)
    with pytest.raises(BadRequest):
        await call(alice, "messages.send", threadId=tid, generate=False)
    with pytest.raises(NotFound):
        await call(mallory, "messages.send", threadId=tid, prompt="mine now", generate=False)
    with pytest.raises(Unavailable):  # this process has no generation queue
        await call(alice, "messages.send", threadId=tid, prompt="answer me")


async def test_deleting_messages_by_id_and_by_range(as_user: Callable[[str], Context]) -> None:
    alice = as_user("alice")
    tid = (await call(alice, "threads.create")).value["threadId"]
    ids = [(await call(alice, "messages.send", threadId=tid, prompt=f"m{i}", generate=False)).value["messageId"]
           for i in range(4)]
    await call(alice, "messages.delete", messageIds=[ids[0]])
    await call(alice, "messages.deleteRange", threadId=tid, startOrder=2, endOrder=4)  # the end is exclusive
    _, page = await alice.store.messages.list(tid, "alice")
    assert [m.message_id for m in page.page] == [ids[3]]


async def test_snippets_and_abort(as_user: Callable[[str], Context]) -> None:
    alice = as_user("alice")
    tid = (await call(alice, "threads.create")).value["threadId"]
    added = await call(alice, "snippets.add", threadId=tid, kind="canvas", content="v1")
    sid = added.value["snippetId"]
    await call(alice, "snippets.delete", snippetId=sid)
    with pytest.raises(NotFound):
        await alice.store.snippets.get(sid)
    aborted = await call(alice, "streams.abort", threadId=tid)
    assert aborted.value == {"aborted": 0}
    with pytest.raises(BadRequest):
        await call(alice, "streams.abort")
