"""Working memory: sections edited one at a time, and writes that keep their revisions and refuse a
stale version."""

from __future__ import annotations

import pytest

from threadline.shared.errors import BadRequest, Conflict
from threadline.shared.threads import Store
from threadline.shared.threads.working_memory import MAX_CHARS, edited

pytestmark = pytest.mark.anyio


def test_sections_are_replaced_appended_to_and_forgotten() -> None:
    doc = edited("", "replace", "Preferences", "Green tea")
    assert doc == "## Preferences\nGreen tea"
    doc = edited(doc, "append", "Goals", "Run a marathon")
    doc = edited(doc, "append", "preferences", "No sugar")  # headings match whatever their case
    assert doc == "## Preferences\nGreen tea\nNo sugar\n\n## Goals\nRun a marathon"
    doc = edited(doc, "replace", "Preferences", "Coffee")
    assert edited(doc, "forget", "Preferences") == "## Goals\nRun a marathon"
    assert edited(doc, "forget", "Nothing") == doc
    assert edited("Notes kept by hand\n\n## A\nx", "append", "B", "y") == "Notes kept by hand\n\n## A\nx\n\n## B\ny"
    with pytest.raises(BadRequest):
        edited(doc, "replace", "two\nlines", "x")


async def test_writes_keep_revisions_and_refuse_a_stale_version(store: Store) -> None:
    memory = store.working_memory
    assert (await memory.read(user_id="u1")).version == 0
    assert await memory.write("one", by="user:u1", op="set", user_id="u1") == 1
    version, doc = await memory.edit("append", "Facts", "likes tea", by="agent:a", user_id="u1")
    assert version == 2 and doc == "one\n\n## Facts\nlikes tea"
    with pytest.raises(Conflict):
        await memory.write("stale", by="user:u1", op="set", user_id="u1", expected_version=1)
    with pytest.raises(BadRequest):
        await memory.write("x" * (MAX_CHARS + 1), by="user:u1", op="set", user_id="u1")
    view = await memory.read(user_id="u1", history=10)
    assert view.text == doc and [(r.version, r.by) for r in view.history] == [(2, "agent:a"), (1, "user:u1")]
    assert (await memory.read(user_id="u1", thread_id="t1")).version == 0  # a thread's is apart
