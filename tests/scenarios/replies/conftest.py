from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rq import Queue

from tests.support.replies import streams_in_flight
from tests.support.stack import Stack, run_stack
from threadline.shared import keys
from threadline.workers.queues import GENERATION


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Valkey, the scripted LLM, two web processes and a pool of generation workers."""
    with run_stack(tmp_path_factory.mktemp("stack"), webs=2, workers=3, env={"SSE_PING_S": "0.5", "AUTH_CLAIMS": "org, roles"}) as s:
        yield s


def settle(stack: Stack, timeout: float = 30.0) -> None:
    """Wait until no generation is queued or streaming (an earlier test's retry would take this
    test's scripted model answers). A killed worker's job may stay in RQ's started registry for
    a while: streams and jobs' alive keys tell whether something still runs."""
    conn, rq = stack.store(), stack.rq()
    queue = Queue(GENERATION, connection=rq)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = next(conn.scan_iter(match=keys.generation_alive("*"), count=1000), None)  # in a thread's turn
        if queue.count == 0 and streams_in_flight(conn) == 0 and waiting is None:
            break
        time.sleep(0.05)
    conn.close()
    rq.close()


@pytest.fixture
def llm(stack: Stack) -> Stack:
    settle(stack)
    stack.reset_llm()
    return stack
