"""The RQ job that answers a prompt: one Generation in the thread's lock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from rq import get_current_job

from threadline.shared import logs, metrics
from threadline.shared.agents import agent_named
from threadline.shared.config import load_settings
from threadline.shared.errors import NotFound
from threadline.shared.generation.lock import thread_turn
from threadline.shared.generation.runner import Generation
from threadline.shared.generation.sinks import StoreSink
from threadline.shared.limits import Limits, Who
from threadline.shared.memory.search import MemorySearch, memory_search_for
from threadline.shared.redis_client import connect
from threadline.shared.store import Store

log = logging.getLogger(__name__)


class _Runtime:
    """What a worker process keeps from one job to the next: settings, an event loop, a pool."""

    def __init__(self, max_connections: int = 8) -> None:
        self.settings = load_settings()
        self.max_connections = max_connections
        self._loop: asyncio.AbstractEventLoop | None = None
        self.store: Store | None = None
        self.memory: MemorySearch | None = None

    def run(self, coro: Coroutine[Any, Any, str]) -> str:
        """Run one job on this process's kept loop (for one-job-at-a-time workers)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(coro)
        except BaseException:
            for task in asyncio.all_tasks(self._loop):  # e.g. a job timeout: leave nothing behind
                task.cancel()
            raise


_runtime: _Runtime | None = None
_shared_runtime: _Runtime | None = None  # of the concurrent worker's loop


def run(thread_id: str, prompt_message_id: str, agent_name: str | None, teams: Sequence[str] = ()) -> str:
    """RQ entry point: generate the reply to ``prompt_message_id``; return the outcome."""
    global _runtime
    if _runtime is None:
        _runtime = _Runtime()
    job = get_current_job()
    return _runtime.run(generate(_runtime, thread_id, prompt_message_id, agent_name, job.id if job else None,
                                 tuple(teams)))


async def arun(thread_id: str, prompt_message_id: str, agent_name: str | None, teams: Sequence[str] = (),
               job_id: str | None = None) -> str:
    """The same job on a running loop, for workers that run many at once (workers.concurrent)."""
    global _shared_runtime
    if _shared_runtime is None:
        _shared_runtime = _Runtime(max_connections=256)
    return await generate(_shared_runtime, thread_id, prompt_message_id, agent_name, job_id, tuple(teams))


run.async_impl = arun  # type: ignore[attr-defined]


async def generate(rt: _Runtime, thread_id: str, prompt_message_id: str, agent_name: str | None,
                   job_id: str | None = None, teams: tuple[str, ...] = ()) -> str:
    if rt.store is None:
        rt.store = Store(connect(rt.settings.redis_url, max_connections=rt.max_connections))
        rt.memory = memory_search_for(rt.settings, rt.store)
    store = rt.store
    logs.job_id.set(job_id or "")  # every record of this job carries it
    agent = agent_named(rt.settings.app_module, agent_name)
    async with thread_turn(store.redis, thread_id, job_id):
        try:
            prompt = await store.messages.get(prompt_message_id)
        except NotFound:
            log.info("prompt %s is gone; nothing to answer", prompt_message_id)
            return "gone"
        await store.memory.saved([prompt])  # embed it now if that was missed
        started = time.perf_counter()
        metrics.in_flight.inc()
        outcome = "stopped"
        try:
            sink = StoreSink(store, thread_id, memory=rt.memory, job_id=job_id or "")
            limits = Limits.from_settings(store.redis, store.scripts, rt.settings)
            async with limits.reply_slot(Who(prompt.user_id, agent.name, teams), job_id or prompt.message_id):
                result = await Generation(rt.settings, agent, prompt, sink, teams=teams, limits=limits).run()
            outcome = result.outcome
        finally:
            metrics.in_flight.dec()
            metrics.generations.labels(agent.name, outcome).inc()
            metrics.generation_seconds.labels(agent.name).observe(time.perf_counter() - started)
    return result.outcome
