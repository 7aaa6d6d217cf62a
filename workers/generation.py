"""The RQ job that answers a prompt: one Generation in the thread's lock."""

from __future__ import annotations

import asyncio
import logging

from rq import get_current_job

from shared.agents import agent_named
from shared.config import load_settings
from shared.errors import NotFound
from shared.generation.lock import thread_turn
from shared.generation.runner import Generation
from shared.redis_client import connect
from shared.store import Store

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 3600


def job_id(trigger_message_id: str) -> str:
    """Jobs are named after the message that asked for them: a resent mutation never enqueues twice."""
    return f"gen-{trigger_message_id}"


def run(thread_id: str, prompt_message_id: str, agent_name: str | None) -> str:
    """RQ entry point: generate the reply to ``prompt_message_id``; return the outcome."""
    job = get_current_job()
    return asyncio.run(generate(thread_id, prompt_message_id, agent_name, job.id if job else None))


async def generate(thread_id: str, prompt_message_id: str, agent_name: str | None,
                   job_id: str | None = None) -> str:
    settings = load_settings()
    redis = connect(settings.redis_url, max_connections=8)
    try:
        store = Store(redis)
        agent = agent_named(settings.app_module, agent_name)
        async with thread_turn(redis, thread_id, job_id):
            try:
                prompt = await store.messages.get(prompt_message_id)
            except NotFound:
                log.info("prompt %s is gone; nothing to answer", prompt_message_id)
                return "gone"
            result = await Generation(store, settings, agent, prompt).run()
        return result.outcome
    finally:
        await redis.aclose()
