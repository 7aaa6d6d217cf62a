"""Queries in-process: their values and versions, the channels they listen on, the thread
whose streams a result carries, and the per-subscriber part of their args."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from threadline.server.context import Context
from threadline.server.queries import QUERIES, StreamedPage
from threadline.shared import keys
from threadline.shared.errors import NotFound
from threadline.shared.records import Message

pytestmark = pytest.mark.anyio


def args_of(name: str, **args: Any) -> Any:
    return msgspec.convert(args, QUERIES[name].args_type)


async def test_lists_and_gets_with_versions(as_user: Callable[[str], Context]) -> None:
    alice = as_user("alice")
    t = await alice.store.threads.create("alice", title="one")
    v1, threads = await QUERIES["threads.list"].run(alice, args_of("threads.list"))
    assert [x.thread_id for x in threads.page] == [t.thread_id]
    await alice.store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", text="hi")])
    v2, page = await QUERIES["messages.list"].run(alice, args_of("messages.list", threadId=t.thread_id))
    assert v2 >= 1 and [m.text for m in page.page] == ["hi"]
    _, thread = await QUERIES["threads.get"].run(alice, args_of("threads.get", threadId=t.thread_id))
    assert thread.title == "one"
    with pytest.raises(NotFound):
        await QUERIES["threads.get"].run(as_user("mallory"), args_of("threads.get", threadId=t.thread_id))
    assert v1 >= 1


async def test_messages_with_streams_carry_the_threads_streams(as_user: Callable[[str], Context]) -> None:
    alice = as_user("alice")
    t = await alice.store.threads.create("alice")
    q = QUERIES["messages.list"]
    plain = args_of("messages.list", threadId=t.thread_id)
    streamed = args_of("messages.list", threadId=t.thread_id, streams=True, streamCursors={"t1-s1": 3})
    assert q.follows(plain) is None and q.follows(streamed) == t.thread_id
    assert q.channels(alice, streamed) == [keys.thread_channel(t.thread_id)]
    shared, cursors = q.split(streamed)
    assert cursors == {"t1-s1": 3} and shared.stream_cursors == {} and streamed.stream_cursors == {"t1-s1": 3}
    _, value = await q.run(alice, shared)
    assert isinstance(value, StreamedPage) and value.streams == [] and value.is_done
    assert msgspec.json.decode(msgspec.json.encode(value)).keys() == {"page", "continueCursor", "isDone", "streams"}


async def test_context_fetch_shows_what_an_agent_would_get(as_user: Callable[[str], Context]) -> None:
    alice = as_user("alice")
    t = await alice.store.threads.create("alice")
    await alice.store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", text="earlier")])
    _, value = await QUERIES["context.fetch"].run(alice, args_of("context.fetch", threadId=t.thread_id,
                                                                 prompt="now"))
    assert [m.text for m in value["messages"]] == ["earlier"]
    assert value["agentName"] and value["chat"][-1]["content"] == "earlier", value["chat"]
