"""``python -m threadline.workers reembed``: queue every message, snippet, store item and document for
embedding again.

Run it after changing EMBEDDING_MODEL: the index process (started with the new
model) writes a new collection for the new (model, dimension), and searches use
it; vectors of two models are never compared. The old collection is left as it
was (drop it with Qdrant's tools once the new one is complete). A document is
embedded again from the chunks of its searchable version (its content is not
kept once indexed); one still being indexed needs nothing: its own op follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from threadline.shared.documents.store import op_ref
from threadline.shared.indexing.ops import IndexOp, waiting
from threadline.shared.items.store import item_ref
from threadline.shared.runtime import Runtime, process_settings
from threadline.shared.storage.pagination import Page
from threadline.shared.threads import Store

log = logging.getLogger("threadline.workers.reembed")
T = TypeVar("T")


async def queue_everything(store: Store) -> tuple[int, int]:
    """Queue every message, snippet, item and document for embedding; (messages, snippets)."""
    client = store.redis
    messages = snippets = 0
    users = await store.threads.users(limit=1_000_000)
    for n, user in enumerate(users, 1):
        for thread_id in await store.threads.owned_ids(user):  # (a shared one: once, by its owner)
            messages += await _each_page(thread_id, store)
            snippets += await _each_snippet_page(thread_id, store)
        if n % 100 == 0 or n == len(users):
            log.info("queued for embedding: %d of %d users, %d messages, %d snippets",
                     n, len(users), messages, snippets)
    items = 0
    for namespace in await store.items.namespaces():
        items += await _each_item_page(namespace, store)
    documents = 0
    for namespace in await store.documents.namespaces():
        documents += await _each_document_page(namespace, store)
    pending = await waiting(client)
    print(f"queued {messages} messages, {snippets} snippets, {items} items and {documents} documents for "
          f"embedding ({pending} ops waiting)")
    return messages, snippets


async def _pages(read: Callable[[str | None], Awaitable[tuple[int, Page[T]]]]) -> AsyncIterator[list[T]]:
    """Every page ``read(cursor)`` gives, the first (cursor None) to the last."""
    cursor = None
    while True:
        _, page = await read(cursor)
        yield page.page
        if page.is_done:
            return
        cursor = page.continue_cursor


async def _each_page(thread_id: str, store: Store) -> int:
    count = 0
    async for page in _pages(lambda cursor: store.messages.list(thread_id, None, num_items=100, cursor=cursor)):
        await store.memory.saved(page)
        count += len(page)
    async for hidden in store.messages.off_branch(thread_id):  # (found again when their branch is shown)
        await store.memory.saved(hidden)
        count += len(hidden)
    return count


async def _each_snippet_page(thread_id: str, store: Store) -> int:
    count = 0  # every snippet, not only the newest page
    async for page in _pages(lambda cursor: store.snippets.list(thread_id, None, num_items=100, cursor=cursor)):
        for s in page:
            await store.memory.snippet_saved(thread_id, s.snippet_id)
        count += len(page)
    return count


async def _each_item_page(namespace: str, store: Store) -> int:
    count = 0
    async for page in _pages(lambda cursor: store.items.page(namespace, num_items=100, cursor=cursor)):
        indexed = [IndexOp("embed_item", item_ref(namespace, i.key)) for i in page if i.index]
        await store.memory.push(namespace, indexed)
        count += len(indexed)
    return count


async def _each_document_page(namespace: str, store: Store) -> int:
    """Queue the searchable version of each document of ``namespace`` (one not indexed yet has its op)."""
    count = 0
    async for page in _pages(lambda cursor: store.documents.page(namespace, num_items=100, cursor=cursor)):
        ready = [IndexOp("reembed_document", op_ref(namespace, d.key, d.ready_version))
                 for d in page if d.ready_version > 0]
        await store.memory.push(namespace, ready)
        count += len(ready)
    return count


async def _queue_everything() -> None:
    async with Runtime(process_settings()) as rt:
        await queue_everything(rt.store)


def run() -> None:
    asyncio.run(_queue_everything())
