"""The RQ job that answers a prompt: one Generation in the thread's lock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rq import get_current_job

from threadline.shared import logs, metrics, runtime
from threadline.shared.agents import agent_named
from threadline.shared.agents.request import ReplyRequest
from threadline.shared.errors import NotFound
from threadline.shared.generation.lock import thread_turn
from threadline.shared.generation.runner import Generation
from threadline.shared.generation.sinks import StoreSink
from threadline.shared.usage.limits import Who

log = logging.getLogger(__name__)


_loop: asyncio.AbstractEventLoop | None = None  # kept from one job to the next by one-at-a-time workers


def run(thread_id: str, prompt_message_id: str, agent_name: str | None, teams: Sequence[str] = (),
        request: Mapping[str, Any] | None = None) -> str:
    """RQ entry point: generate the reply to ``prompt_message_id``; return the outcome. ``request``:
    the send's context, options and claims (shared.agents.request.ReplyRequest.to_job)."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    job = get_current_job()
    try:
        return _loop.run_until_complete(generate(thread_id, prompt_message_id, agent_name,
                                                 job.id if job else None, tuple(teams), request))
    except BaseException:
        for task in asyncio.all_tasks(_loop):  # e.g. a job timeout: leave nothing behind
            task.cancel()
        raise


async def arun(thread_id: str, prompt_message_id: str, agent_name: str | None, teams: Sequence[str] = (),
               request: Mapping[str, Any] | None = None, job_id: str | None = None) -> str:
    """The same job on a running loop, for workers that run many at once (workers.concurrent)."""
    return await generate(thread_id, prompt_message_id, agent_name, job_id, tuple(teams), request)


run.async_impl = arun  # type: ignore[attr-defined]


async def generate(thread_id: str, prompt_message_id: str, agent_name: str | None,
                   job_id: str | None = None, teams: tuple[str, ...] = (),
                   request: Mapping[str, Any] | None = None) -> str:
    rt = runtime.for_this_loop()
    store = rt.store
    logs.job_id.set(job_id or "")  # every record of this job carries it
    agent = agent_named(rt.settings.app_module, agent_name)
    async with thread_turn(store.redis, thread_id, job_id, rq=rt.rq) as first:
        if not first:
            log.warning("job %s already began once; not answering %s again", job_id, prompt_message_id)
            return "duplicate"
        try:
            prompt = await store.messages.get(prompt_message_id)
            taken = (await store.threads.get(thread_id)).takeover
        except NotFound:
            log.info("prompt %s is gone; nothing to answer", prompt_message_id)
            return "gone"
        if taken is not None:  # a send that raced the takeover: the person answers
            log.info("thread %s is taken over by %s; not answering %s", thread_id, taken.user_id, prompt_message_id)
            return "held"
        started = time.perf_counter()
        metrics.in_flight.inc()
        outcome = "stopped"
        try:
            sink = StoreSink(store, thread_id, memory=rt.memory, job_id=job_id or "")
            async with rt.limits.reply_slot(Who(prompt.user_id, agent.name, teams), job_id or prompt.message_id):
                result = await Generation(rt, agent, prompt, sink, teams=teams, rate_limited=True,
                                          request=ReplyRequest.from_job(request)).run()
            outcome = result.outcome
        finally:
            metrics.in_flight.dec()
            metrics.generations.labels(agent.name, outcome).inc()
            metrics.generation_seconds.labels(agent.name).observe(time.perf_counter() - started)
    return result.outcome
