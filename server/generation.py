"""Asking workers for replies: the generation queue, seen from a web process."""

from __future__ import annotations

import asyncio

import redis
from rq import Queue

from shared.agents import Agent, agent_named
from shared.config import Settings
from shared.errors import Conflict, Unavailable
from shared.generation.lock import join_queue, leave_queue
from shared.models.providers import provider_named
from shared.records import Message
from shared.store import Store
from workers.generation import JOB_TIMEOUT_S, job_id
from workers.queues import GENERATION


class GenerationQueue:
    """Enqueues one RQ job per prompt, named after the message that triggered it."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._redis = redis.Redis.from_url(settings.redis_url)
        self._queue = Queue(GENERATION, connection=self._redis)

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

    async def enqueue(self, prompt: Message, agent: Agent, trigger_id: str | None = None) -> str:
        """Queue the generation answering ``prompt``; the job is named after ``trigger_id``
        (the message that asked for it), so asking twice never enqueues twice."""
        jid = job_id(trigger_id or prompt.message_id)
        await join_queue(self._store.redis, prompt.thread_id, jid)
        try:
            await asyncio.to_thread(
                self._queue.enqueue, "workers.generation.run", prompt.thread_id, prompt.message_id, agent.name,
                job_id=jid, job_timeout=JOB_TIMEOUT_S, result_ttl=3600, failure_ttl=86400,
            )
        except redis.RedisError as exc:
            await leave_queue(self._store.redis, prompt.thread_id, jid)
            raise Unavailable(f"could not queue the generation: {exc}") from exc
        return jid

    def close(self) -> None:
        self._redis.close()
