"""First start on the new embedded engine: the old store's vectors are rebuilt from Redis (every
message and snippet, of any count), and the old directory is set aside, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared.indexing.test_ops import drain
from threadline.shared.indexing.ops import waiting
from threadline.shared.records import Message
from threadline.shared.threads import Store
from threadline.workers.index import migrate_embedded

pytestmark = pytest.mark.anyio


async def test_an_old_store_is_rebuilt_from_redis_once(store: Store, tmp_path: Path) -> None:
    (tmp_path / "qdrant" / "collection").mkdir(parents=True)  # what qdrant-client's local mode left
    t = await store.threads.create("alice")
    await store.messages.save(t.thread_id, "alice", [Message(message_id="", thread_id="", text=f"m{i}")
                                                    for i in range(250)])
    for i in range(130):  # more than one page of snippets
        await store.snippets.add(t.thread_id, "alice", kind="note", content=f"s{i}")
    await drain(store)

    await migrate_embedded(tmp_path, store)
    ops = await drain(store)
    kinds = [op.kind for op in ops if op is not None]
    assert kinds.count("embed_message") == 250 and kinds.count("embed_snippet") == 130
    assert not (tmp_path / "qdrant").exists() and (tmp_path / "qdrant.migrated" / "collection").is_dir()

    await drain(store)
    await migrate_embedded(tmp_path, store)  # a second start: nothing to migrate
    assert await waiting(store.redis) == 0
