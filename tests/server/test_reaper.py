"""The reaper: a stale stream's reply ends as failed; an agent that retries is asked again,
at most its number of retries, and the retry count goes with the thread."""

from __future__ import annotations

import pytest

from tests.server.test_delta_log import open_stream
from tests.support.store import settings_for
from threadline.server.reaper import StreamReaper
from threadline.server.reply_queue import ReplyQueue
from threadline.shared import jobs, keys
from threadline.shared.agents import Agent
from threadline.shared.agents.request import ReplyOptions, ReplyRequest
from threadline.shared.clock import now_ms
from threadline.shared.records import Message
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


class Enqueued:
    """Stands in for the web process's generation queue: records what the reaper asks for."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.asked: list[tuple[str, str | None]] = []

    def agent(self, name: str | None) -> Agent:
        return self._agent

    async def enqueue(self, prompt: Message, agent: Agent, trigger_id: str | None = None,
                      teams: tuple[str, ...] = (), request: ReplyRequest | None = None) -> str:
        self.asked.append((prompt.message_id, trigger_id))
        return f"gen-{trigger_id}"

    async def requeue_stranded(self) -> list[str]:  # no RQ here (tests/scenarios/replies/test_concurrency.py has it)
        return []


async def stale(store: Store, tid: str, sid: str) -> None:
    """Last heartbeat 5 s ago: stale for these tests' reapers (1 s), not for the session's web processes
    on the same server (15 s), whose own reaper would otherwise end the stream first."""
    await store.redis.zadd(keys.active_streams(tid), {f"{tid}/{sid}": now_ms() - 5000})


async def test_a_retrying_agent_is_asked_again_once_and_its_count_leaves_with_the_thread(store: Store) -> None:
    queue = Enqueued(Agent(name="a", on_worker_death="retry", max_worker_retries=1))
    reaper = StreamReaper(store, stale_ms=1000, grace_ms=60_000, generation=queue)
    tid, sid, reply = await open_stream(store)
    record = await store.streams.get(sid)
    assert record is not None and record.status == "streaming"
    prompt_id = record.prompt_message_id
    await stale(store, tid, sid)
    assert await reaper.sweep() == 1
    assert queue.asked == [(prompt_id, f"{prompt_id}-retry1")]
    assert await store.redis.hget(keys.generation_retries(tid), prompt_id) == b"1"

    # the retry's own stream dies too: no third attempt
    second, _ = await store.streams.open(reply, agent_name="a", prompt_message_id=prompt_id)
    await stale(store, tid, second)
    assert await reaper.sweep() == 1
    assert len(queue.asked) == 1

    await store.threads.delete(tid, "alice")
    assert not await store.redis.exists(keys.generation_retries(tid))


async def test_an_agent_that_fails_is_not_asked_again(store: Store) -> None:
    queue = Enqueued(Agent(name="a"))
    reaper = StreamReaper(store, stale_ms=1000, grace_ms=60_000, generation=queue)
    tid, sid, reply = await open_stream(store)
    await stale(store, tid, sid)
    assert await reaper.sweep() == 1
    assert queue.asked == [] and (await store.messages.get(reply.message_id)).status == "failed"


async def test_a_retry_answers_the_request_its_dead_job_was_queued_with(store: Store, redis_url: str) -> None:
    """The send's teams, context, options and claims travel with the job: the retry's job has them."""
    queue = ReplyQueue(settings_for(redis_url, APP_MODULE="tests.support.agents"), store)
    try:
        agent = queue.agent("mock-retry")
        tid = (await store.threads.create("alice")).thread_id
        _, (prompt,) = await store.messages.save(tid, "alice", [Message(message_id="", thread_id="", text="q")])
        request = ReplyRequest(context={"document": "a.md"}, options=ReplyOptions(temperature=0.5), admin=True,
                               claims={"org": "acme"})
        job_id = await queue.enqueue(prompt, agent, teams=("writers",), request=request)
        assert await queue.request_of(job_id) == (("writers",), request)
        _, (reply,) = await store.messages.save(tid, "alice", [Message(message_id="", thread_id="", role="assistant",
                                                                       status="pending")],
                                                prompt_message_id=prompt.message_id)
        sid, _ = await store.streams.open(reply, agent_name=agent.name, prompt_message_id=prompt.message_id,
                                          job_id=job_id)
        await stale(store, tid, sid)
        assert await StreamReaper(store, stale_ms=1000, grace_ms=60_000, generation=queue).sweep() == 1
        retried = jobs.job_id(f"{prompt.message_id}-retry1")
        assert await queue.request_of(retried) == (("writers",), request)
        assert await queue.request_of("no-such-job") == ((), ReplyRequest())
    finally:
        queue.close()
