"""Durable storage of threads and messages in Redis."""

from __future__ import annotations

from threadline.shared.documents.store import DocumentStore
from threadline.shared.files.refs import FileRefs
from threadline.shared.indexing.ops import MemoryOps
from threadline.shared.storage.client import Client
from threadline.shared.storage.guard import Guard
from threadline.shared.storage.outbox import Outbox
from threadline.shared.storage.pagination import MAX_PAGE, Page, PaginationOpts
from threadline.shared.storage.scripts import Scripts
from threadline.shared.streams.records import StreamInfo
from threadline.shared.streams.store import StreamStore
from threadline.shared.threads.messages import MessageStore
from threadline.shared.threads.snippets import SnippetStore
from threadline.shared.threads.threads import ThreadStore

__all__ = ["MAX_PAGE", "Page", "PaginationOpts", "Store", "StreamInfo"]


class Store:
    """Threads and messages over one Redis client."""

    def __init__(self, redis: Client) -> None:
        self.redis = redis
        self.scripts = scripts = Scripts(redis)
        self.memory = MemoryOps(redis)
        self.outbox = Outbox(redis, scripts)
        self.file_refs = refs = FileRefs(redis, scripts, self.outbox)
        self.threads = ThreadStore(redis, scripts, self.outbox, refs)
        self.messages = MessageStore(redis, scripts, self.threads, refs)
        self.streams = StreamStore(redis, scripts, refs)
        self.snippets = SnippetStore(redis, scripts, self.threads)
        self.documents = DocumentStore(redis, scripts)

    async def delete_thread(self, thread_id: str, user_id: str, guard: Guard | None = None) -> None:
        """Delete the user's thread and everything of it (messages, streams and their logs)."""
        await self.threads.delete(thread_id, user_id, await self.streams.all_keys(thread_id), guard)

    async def delete_user(self, user_id: str) -> int:
        """Delete every thread of a user; return how many."""
        ids = await self.threads.all_ids(user_id)
        for thread_id in ids:
            await self.delete_thread(thread_id, user_id)
        return len(ids)
