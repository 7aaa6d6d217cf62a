"""RQ's queues, jobs and registries in a Redis of their own (RQ_REDIS_URL), as a Redis Cluster
deployment needs: replies are answered in order, every key lands where it belongs, the workers'
heartbeat stays readable to the web process, and a job RQ never got is dropped from its thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.scenarios.replies.helpers import token
from tests.support import procs
from tests.support.stack import Stack, run_stack
from threadline.shared import keys

HEADERS = {"Authorization": f"Bearer {token('alice')}"}


@pytest.fixture(scope="module")
def apart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    tmp: Path = tmp_path_factory.mktemp("rq-apart")
    rq_proc, rq_port = procs.start_valkey(tmp / "rq")
    rq_url = f"redis://127.0.0.1:{rq_port}/0"
    try:
        with run_stack(tmp, webs=1, workers=1, index=True, env={"RQ_REDIS_URL": rq_url}) as stack:
            yield stack, rq_url
    finally:
        procs.stop(rq_proc)


def _replies(stack: Stack, tid: str) -> list[dict[str, object]]:
    page = httpx.get(f"{stack.web}/api/threads/{tid}/messages?numItems=100", headers=HEADERS).json()["page"]
    return sorted((m for m in page if m["role"] == "assistant" and m["status"] != "pending"),
                  key=lambda m: (m["order"], m["stepOrder"]))  # type: ignore[arg-type, return-value]


def _until(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def test_replies_come_with_rq_in_a_redis_of_its_own(apart: tuple[Stack, str]) -> None:
    stack, rq_url = apart
    tid = httpx.post(f"{stack.web}/api/threads", json={}, headers=HEADERS).json()["threadId"]
    for prompt in ("one", "two", "three"):
        r = httpx.post(f"{stack.web}/api/threads/{tid}/messages", json={"prompt": prompt, "agentName": "mock"},
                       headers=HEADERS)
        assert r.status_code == 201, r.text
    _until(lambda: len(_replies(stack, tid)) == 3, "three replies")
    assert [m["status"] for m in _replies(stack, tid)] == ["success"] * 3
    store, rq = stack.store(), redis.Redis.from_url(rq_url)
    assert not list(store.scan_iter(match="rq:*", count=1000))  # RQ's keys are all in its own Redis
    assert list(rq.scan_iter(match="rq:job:*", count=1000))
    assert not list(rq.scan_iter(match=f"{keys.PREFIX}:*", count=1000))  # and none of ours there
    _until(lambda: httpx.get(f"{stack.web}/readyz").status_code == 200, "the worker's heartbeat seen as ready")


def test_a_job_rq_never_got_is_dropped_from_its_thread(apart: tuple[Stack, str]) -> None:
    """The crash between the two steps of an enqueue: the thread's queue names a job RQ never got.
    The thread's next reply drops it instead of waiting for it forever."""
    stack, _ = apart
    tid = httpx.post(f"{stack.web}/api/threads", json={}, headers=HEADERS).json()["threadId"]
    stack.store().rpush(keys.generation_queue(tid), "never-enqueued")
    r = httpx.post(f"{stack.web}/api/threads/{tid}/messages", json={"prompt": "hello", "agentName": "mock"},
                   headers=HEADERS)
    assert r.status_code == 201, r.text
    _until(lambda: len(_replies(stack, tid)) == 1, "the reply after the lost job")
    assert _replies(stack, tid)[0]["status"] == "success"
