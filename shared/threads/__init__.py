"""Durable storage of threads and messages in Redis."""

from __future__ import annotations

import contextlib
from typing import Any

from threadline.shared.clock import now_ms
from threadline.shared.documents.store import DocumentStore
from threadline.shared.errors import NotFound
from threadline.shared.files.refs import FileRefs
from threadline.shared.indexing.ops import MemoryOps
from threadline.shared.items.store import ItemStore
from threadline.shared.records import Takeover, Thread
from threadline.shared.storage.client import Client
from threadline.shared.storage.guard import Guard
from threadline.shared.storage.outbox import Outbox
from threadline.shared.storage.pagination import MAX_PAGE, Page, PaginationOpts
from threadline.shared.storage.scripts import Scripts
from threadline.shared.streams.records import StreamInfo
from threadline.shared.streams.store import StreamStore
from threadline.shared.threads.canvas import CanvasStore
from threadline.shared.threads.messages import MessageStore
from threadline.shared.threads.presence import PresenceStore
from threadline.shared.threads.snippets import SnippetStore
from threadline.shared.threads.threads import ThreadStore
from threadline.shared.threads.working_memory import WorkingMemory
from threadline.shared.webhooks import Webhooks

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
        self.webhooks = Webhooks(redis, scripts)
        self.streams = StreamStore(redis, scripts, refs, self.webhooks)
        self.snippets = SnippetStore(redis, scripts, self.threads)
        self.canvases = CanvasStore(redis, scripts, self.threads, self.snippets)
        self.presence = PresenceStore(redis, scripts)
        self.documents = DocumentStore(redis, scripts)
        self.items = ItemStore(redis, scripts)
        self.working_memory = WorkingMemory(redis, scripts)

    async def take_over(self, thread_id: str, by: str, agent_name: str,
                        metadata: dict[str, Any] | None = None) -> tuple[int, Thread]:
        """The person ``by`` answers in the thread as the human agent ``agent_name`` until
        ``release``: its running and queued replies stop (after the mark: a reply starting meanwhile
        sees it, workers.reply_job) and no agent answers a send. (The thread's version, the thread.)"""
        version, thread = await self.threads.set_takeover(
            thread_id, Takeover(agent_name=agent_name, user_id=by, metadata=metadata, at=now_ms()))
        if await self.streams.abort_replies(thread_id):  # (a write of its own)
            version = await self.threads.version(thread_id)
        return version, thread

    async def release(self, thread_id: str) -> tuple[int, Thread]:
        """The thread's agents answer again. (The version this wrote, the thread.)"""
        return await self.threads.set_takeover(thread_id, None)

    async def delete_thread(self, thread_id: str, user_id: str, guard: Guard | None = None) -> None:
        """Delete the user's thread and everything of it (messages, streams and their logs)."""
        await self.threads.delete(thread_id, user_id, await self.streams.all_keys(thread_id), guard)

    async def delete_user(self, user_id: str) -> int:
        """Delete every thread a user owns, and take them out of the threads they are a member of;
        return how many were deleted."""
        deleted = 0
        for thread_id in await self.threads.all_ids(user_id):
            try:
                await self.delete_thread(thread_id, user_id)
                deleted += 1
            except NotFound:  # not theirs: a thread they are a member of (or gone meanwhile)
                with contextlib.suppress(NotFound):
                    await self.threads.remove_member(thread_id, user_id, user_id)
        return deleted
