"""A WebSocket connection's presence ends with it: every other tab sees it go at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from threadline.server.context import Context

log = logging.getLogger(__name__)

_leaving: set[asyncio.Task[None]] = set()  # (held until done: the loop keeps only weak references)


def leave_later(ctx: Context, thread_ids: Iterable[str]) -> None:
    """Take the caller's connection out of each thread's presence, in the background."""
    task = asyncio.get_running_loop().create_task(_leave(ctx, list(thread_ids)))
    _leaving.add(task)
    task.add_done_callback(_leaving.discard)


async def _leave(ctx: Context, thread_ids: list[str]) -> None:
    for thread_id in thread_ids:
        try:
            await ctx.store.presence.leave(thread_id, ctx.user_id, ctx.connection)
        except Exception as exc:  # Redis away, thread deleted: its entry ends by itself
            log.info("presence of %s in %s not cleared: %s", ctx.connection, thread_id, exc)
