"""Finds generations whose worker died and ends them; removes ended streams' logs; does the
follow-ups that writers which died left in the outboxes (shared.storage.outbox).

Workers heartbeat every 0.5 s. A stream silent for STREAM_STALE_MS is aborted
and its reply stored as ``failed`` with the text streamed so far, so every
subscriber sees it end within seconds rather than RQ's minutes. Reply jobs that
were only waiting for their thread's turn in the dead worker go back on RQ's
queue (server.stranded). Ended streams stay listed for STREAM_GRACE_MS, then
their keys go, in bounded batches.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from threadline.shared import keys
from threadline.shared.errors import ChatError, NotFound
from threadline.shared.records import TextPart
from threadline.shared.streams.records import StreamRecord
from threadline.shared.tasks import cancel_and_wait
from threadline.shared.threads import Store

log = logging.getLogger(__name__)

SWEEP_S = 1.0
BATCH = 100
STRANDED_EVERY = 3  # sweeps between two looks for stranded reply jobs
ENDED_EVERY = 5  # sweeps between two walks of the ended streams (each walk reads every partition)
OUTBOX_EVERY = 2  # sweeps between two walks of the outboxes (follow-ups a writer that died left)


RETRY_TTL_S = 86400


class StreamReaper:
    def __init__(self, store: Store, *, stale_ms: int, grace_ms: int, generation: Any = None) -> None:
        self._store = store
        self._generation = generation  # server.reply_queue.ReplyQueue, for agents that retry
        self._stale_ms = stale_ms
        self._grace_ms = grace_ms
        self._task: asyncio.Task[None] | None = None
        self._token = secrets.token_hex(8)
        self._sweeps = 0
        self.reaped = 0
        self.requeued = 0
        self.followed = 0  # follow-ups of writers that died, done by this reaper

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="stream-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)  # (its sweep's Redis calls may swallow one cancel)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                # one process sweeps at a time; finishing is idempotent anyway
                if await self._store.redis.set(keys.REAPER_LOCK, self._token, nx=True, px=int(SWEEP_S * 3000)):
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream reaper pass failed")

    async def sweep(self) -> int:
        """End every stale stream; expire ended ones. Returns how many were ended."""
        ended = 0
        for thread_id, stream_id in await self._store.streams.stale(self._stale_ms, BATCH):
            try:
                ended += await self._end(thread_id, stream_id)
            except ChatError:
                log.exception("could not end stale stream %s", stream_id)
        if self._sweeps % ENDED_EVERY == 0:
            await self._store.streams.expire_ended(self._grace_ms, BATCH)
        if self._sweeps % OUTBOX_EVERY == 0:
            self.followed += await self._store.outbox.sweep(limit=BATCH)
        self.reaped += ended
        self._sweeps += 1
        if self._generation is not None and self._sweeps % STRANDED_EVERY == 1:
            self.requeued += len(await self._generation.requeue_stranded())
        return ended

    async def _end(self, thread_id: str, stream_id: str) -> int:
        info = await self._store.streams.get(stream_id)
        if info is None:
            await self._store.streams.forget_active(thread_id, stream_id)
            return 0
        text = await self._store.streams.text(thread_id, stream_id)
        try:
            reply = await self._store.messages.get(info.message_id)
        except NotFound:
            replies = []
        else:
            reply.status, reply.error = "failed", "the worker generating this reply stopped"
            reply.text = text
            reply.parts = [TextPart(text=text)] if text else []
            replies = [reply]
        done = await self._store.streams.finish(thread_id, stream_id, replies, status="aborted")
        if done:
            log.warning("stream %s had no heartbeat for %d ms: ended it", stream_id, self._stale_ms)
            await self._retry(thread_id, info)
        return int(done)

    async def _retry(self, thread_id: str, info: StreamRecord) -> None:
        """Answer the prompt again when the agent asks for it (``on_worker_death="retry"``)."""
        if self._generation is None or not info.prompt_message_id:
            return
        try:
            agent = self._generation.agent(info.agent_name or None)
        except ChatError:
            return
        if agent.on_worker_death != "retry":
            return
        prompt_id = info.prompt_message_id
        key = keys.generation_retries(thread_id)
        async with self._store.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, prompt_id, 1)
            pipe.expire(key, RETRY_TTL_S)
            attempt, _ = await pipe.execute()
        if attempt > agent.max_worker_retries:
            log.warning("not retrying %s again: %d retries already", prompt_id, attempt - 1)
            return
        try:
            prompt = await self._store.messages.get(prompt_id)
        except NotFound:
            return
        teams, request = await self._generation.request_of(info.job_id) if info.job_id else ((), None)
        await self._generation.enqueue(prompt, agent, trigger_id=f"{prompt_id}-retry{attempt}", teams=teams,
                                       request=request)
        log.warning("retrying the reply to %s (attempt %d)", prompt_id, attempt)
