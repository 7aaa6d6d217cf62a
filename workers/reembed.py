"""``python -m workers reembed``: queue every message and snippet for embedding again.

Run it after changing EMBEDDING_MODEL: the index process (started with the new
model) writes a new collection for the new (model, dimension), and searches use
it; vectors of two models are never compared. The old collection is left as it
was (drop it with Qdrant's tools once the new one is complete).
"""

from __future__ import annotations

import asyncio

from shared.config import load_settings
from shared.memory.ops import OPS
from shared.redis_client import connect
from shared.store import Store


async def queue_everything() -> tuple[int, int]:
    settings = load_settings()
    client = connect(settings.redis_url)
    store = Store(client)
    messages = snippets = 0
    try:
        for user in await store.threads.users(limit=1_000_000):
            for thread_id in await store.threads.all_ids(user):
                cursor = None
                while True:
                    _, page = await store.messages.list(thread_id, None, num_items=100, cursor=cursor)
                    await store.memory.saved(page.page)
                    messages += len(page.page)
                    if page.is_done:
                        break
                    cursor = page.continue_cursor
                _, spage = await store.snippets.list(thread_id, None, num_items=100)
                for s in spage.page:
                    await store.memory.snippet_saved(thread_id, s.snippet_id)
                snippets += len(spage.page)
        pending = await client.llen(OPS)
        print(f"queued {messages} messages and {snippets} snippets for embedding ({pending} ops waiting)")
    finally:
        await client.aclose()
    return messages, snippets


def run() -> None:
    asyncio.run(queue_everything())
