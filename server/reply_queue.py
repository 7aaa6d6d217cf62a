"""Asking workers for replies: the queue of reply jobs, seen from a web process (the RQ job is
workers/reply_job.py; the engine it runs, shared/generation)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from rq import Queue
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job

from threadline.shared import jobs, keys
from threadline.shared.agents import Agent, agent_named
from threadline.shared.agents.request import ReplyRequest
from threadline.shared.config import Settings
from threadline.shared.errors import Conflict, Unavailable
from threadline.shared.llm.providers import provider_named
from threadline.shared.records import Message
from threadline.shared.storage.client import connect_sync
from threadline.shared.threads import Store

from .stranded import requeue_stranded

BATCH = 200  # jobs handed to RQ in one pipeline


class ReplyQueue:
    """Enqueues one RQ job per prompt, named after the message that triggered it.

    Jobs asked for at about the same time go to RQ together (``enqueue_many`` in
    one pipeline, on a thread: RQ's client is synchronous), so a burst of sends
    costs a few round trips instead of one per prompt.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._redis = redis.Redis.from_url(settings.rq_url)  # RQ's queues, jobs and registries
        self._apart = connect_sync(settings.redis_url) if settings.rq_apart else None  # threads' queues (a cluster?)
        self._queue = Queue(jobs.GENERATION, connection=self._redis)
        self._pending: list[tuple[Any, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def agent(self, name: str | None) -> Agent:
        """The named agent; BadRequest for an unknown agent or an agent naming an unknown provider."""
        agent = agent_named(self._settings.app_module, name)
        if agent.model != "mock" and agent.provider is not None:
            provider_named(self._settings, agent.provider)
        return agent

    async def before_send(self, thread_id: str, agent: Agent) -> None:
        """Apply the agent's double-texting strategy to a message about to be sent."""
        if agent.double_texting == "enqueue":
            return
        active = await self._store.streams.active_ids(thread_id)
        if not active:
            return
        if agent.double_texting == "reject":
            raise Conflict("a reply is still being generated in this thread")
        for stream_id in active:
            await self._store.streams.abort(thread_id, stream_id)

    async def enqueue(self, prompt: Message, agent: Agent, trigger_id: str | None = None,
                      teams: tuple[str, ...] = (), request: ReplyRequest | None = None) -> str:
        """Queue the generation answering ``prompt``; the job is named after ``trigger_id``
        (the message that asked for it), so asking twice never enqueues twice. ``teams``: the
        sender's (their team rate limits count the reply's tokens); ``request``: the send's context,
        options and claims, which the job carries to the worker."""
        jid = jobs.job_id(trigger_id or prompt.message_id)
        args: tuple[Any, ...] = (prompt.thread_id, prompt.message_id, agent.name, list(teams))
        carried = request.to_job() if request is not None else None
        if carried is not None:
            args = (*args, carried)
        data = Queue.prepare_data(
            jobs.GENERATE, args,
            job_id=jid, timeout=self._settings.generation_timeout_s,
            result_ttl=jobs.RESULT_TTL_S, failure_ttl=jobs.FAILURE_TTL_S,
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((prompt.thread_id, data), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            await done
        except redis.RedisError as exc:
            raise Unavailable(f"could not queue the generation: {exc}") from exc
        return jid

    async def enqueue_task(self, func: str, *args: Any, job_id: str, timeout_s: int = 3600) -> None:
        """Queue a job of the workers' maintenance kind (an erasure...) by its function's import path."""
        try:
            await asyncio.to_thread(self._queue.enqueue, func, *args, job_id=job_id, job_timeout=timeout_s,
                                    result_ttl=jobs.RESULT_TTL_S, failure_ttl=jobs.FAILURE_TTL_S)
        except redis.RedisError as exc:
            raise Unavailable(f"could not queue the job: {exc}") from exc

    async def _flush(self) -> None:
        """Hand what is pending to RQ, a batch at a time, until nothing is left."""
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            unique = {data.job_id: (tid, data) for (tid, data), _ in batch}  # a resend in one batch: one job
            try:
                await asyncio.to_thread(self._enqueue_many, list(unique.values()))
            except Exception as exc:  # each waiting enqueue gets it (Unavailable for Redis errors)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _enqueue_many(self, batch: list[tuple[str, Any]]) -> None:
        """Each job joins its thread's queue (first asked, first answered), then RQ's queue.

        On one Redis, in one transaction: all of it happens or none. With RQ's keys apart
        (RQ_REDIS_URL), the thread's queue first: a crash between the two leaves an id no RQ job
        stands for, which the thread's next job drops (shared.generation.lock), and the request's
        resend enqueues it again; the other order would let a job run ahead of its thread's queue.
        """
        with self._redis.pipeline(transaction=False) as check:
            for _, data in batch:
                check.exists(jobs.job_key(data.job_id))
            known = check.execute()
        todo = [job for job, exists in zip(batch, known, strict=True) if not exists]  # a resend: queued already
        if not todo:
            return
        # one Redis: one transaction; apart (the store perhaps a cluster), each thread's push alone
        with (self._apart or self._redis).pipeline(transaction=self._apart is None) as pipe:
            for thread_id, data in todo:
                pipe.rpush(keys.generation_queue(thread_id), data.job_id)
            if self._apart is None:
                self._queue.enqueue_many([data for _, data in todo], pipeline=pipe)
            pipe.execute()
        if self._apart is not None:
            with self._redis.pipeline() as pipe:
                self._queue.enqueue_many([data for _, data in todo], pipeline=pipe)
                pipe.execute()

    async def request_of(self, job_id: str) -> tuple[tuple[str, ...], ReplyRequest]:
        """The teams and request a reply job was queued with (none when the job is gone), for a
        retry that answers the same request."""
        def read() -> tuple[tuple[str, ...], ReplyRequest]:
            try:
                args = Job.fetch(job_id, connection=self._redis).args
            except (NoSuchJobError, DeserializationError):
                return (), ReplyRequest()
            teams = tuple(args[3]) if len(args) > 3 else ()
            return teams, ReplyRequest.from_job(args[4] if len(args) > 4 else None)

        return await asyncio.to_thread(read)

    async def requeue_stranded(self) -> list[str]:
        """Put reply jobs stranded in a dead worker back on RQ's queue (server.stranded)."""
        return await asyncio.to_thread(requeue_stranded, self._redis, self._apart or self._redis, self._queue)

    def close(self) -> None:
        self._redis.close()
        if self._apart is not None:
            self._apart.close()
