from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.stack import Stack, run_stack
from threadline import RunView, Threadline

LEASE_MS = 1500  # a killed worker's step comes back this soon


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Valkey, the scripted LLM, a web process; generation workers started by the tests."""
    env = {"WORKFLOW_LEASE_MS": str(LEASE_MS), "WORKFLOW_POLL_MS": "50", "WORKERS": "1"}
    with run_stack(tmp_path_factory.mktemp("wf"), webs=1, worker=False, env=env) as s:
        s.start_worker("worker-main")
        yield s


@pytest.fixture
def flow(stack: Stack) -> Iterator[Stack]:
    """The stack with its test counters cleared, the scripted model reset, and a live worker."""
    client = stack.store()
    for key in client.scan_iter(match="test:*", count=1000):
        client.delete(key)
    client.close()
    stack.reset_llm()
    if not any(p.poll() is None for p in stack.procs if "worker" in str(p.args)):
        stack.start_worker("worker-again")
    yield stack


@pytest.fixture
async def tl(flow: Stack) -> AsyncIterator[Threadline]:
    async with Threadline(flow.settings(APP_MODULE="tests.support.agents", WORKFLOW_LEASE_MS=str(LEASE_MS))) as client:
        yield client


def counts(stack: Stack, *names: str) -> dict[str, int]:
    client = stack.store()
    try:
        return {n: int(client.get(f"test:wf:ran:{n}") or 0) for n in names}
    finally:
        client.close()


def release(stack: Stack, name: str) -> None:
    client = stack.store()
    client.set(f"test:wf:release:{name}", 1)
    client.close()


def wait_started(stack: Stack, name: str, attempt: int = 1, timeout: float = 30.0) -> None:
    client = stack.store()
    deadline = time.monotonic() + timeout
    try:
        while int(client.get(f"test:wf:started:{name}") or 0) < attempt:
            assert time.monotonic() < deadline, f"{name} never started (attempt {attempt})"
            time.sleep(0.02)
    finally:
        client.close()


async def wait_for(tl: Threadline, run_id: str, check: object, timeout: float = 30.0) -> RunView:
    """The run once ``check(view)`` holds."""
    import asyncio

    from threadline.shared.errors import Unavailable

    deadline = time.monotonic() + timeout
    while True:
        try:
            view = await tl.workflow_run(run_id)
        except Unavailable:  # the server is restarting: ask again
            assert time.monotonic() < deadline, "the server never came back"
            await asyncio.sleep(0.1)
            continue
        if check(view):  # type: ignore[operator]
            return view
        assert time.monotonic() < deadline, f"gave up waiting; run is {view.status}: {view}"
        await asyncio.sleep(0.05)


def step_named(view: RunView, name: str) -> object:
    return next(s for s in view.steps if s.name == name)
