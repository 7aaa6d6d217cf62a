"""Snippets: kept per thread, newest first, only their owner's; deleting is idempotent."""

from __future__ import annotations

import pytest

from threadline.shared.errors import NotFound
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


async def test_add_list_get_delete(store: Store) -> None:
    t = await store.threads.create("alice")
    tid = t.thread_id
    ids = []
    for i in range(3):
        _, s = await store.snippets.add(tid, "alice", kind="canvas", content=f"draft {i}", target="doc")
        ids.append(s.snippet_id)
    _, page = await store.snippets.list(tid, "alice", num_items=2)
    assert [s.snippet_id for s in page.page] == [ids[2], ids[1]] and not page.is_done
    _, rest = await store.snippets.list(tid, "alice", num_items=2, cursor=page.continue_cursor)
    assert [s.snippet_id for s in rest.page] == [ids[0]] and rest.is_done
    assert (await store.snippets.get(ids[1])).content == "draft 1"
    assert await store.snippets.count(tid) == 3
    assert [s.snippet_id for s in await store.snippets.recent(tid, 2)] == [ids[2], ids[1]]  # newest first
    _, gone = await store.snippets.delete(ids[1], "alice")
    _, again = await store.snippets.delete(ids[1], "alice")
    assert (gone, again) == (True, False)
    with pytest.raises(NotFound):
        await store.snippets.get(ids[1])


async def test_another_users_thread_is_not_found(store: Store) -> None:
    t = await store.threads.create("alice")
    with pytest.raises(NotFound):
        await store.snippets.add(t.thread_id, "mallory", kind="note", content="x")
    with pytest.raises(NotFound):
        await store.snippets.list(t.thread_id, "mallory")
