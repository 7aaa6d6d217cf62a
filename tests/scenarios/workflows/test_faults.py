"""Workflows under faults: a worker SIGKILLed in the middle of each kind of step, a Valkey killed
and restarted (AOF) while a run sleeps and while a step runs. Then count: every finished step ran
once, the killed ones once more, and the run completes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import msgspec
import pytest
import redis

from tests.scenarios.workflows.conftest import counts, release, wait_for, wait_started
from tests.support import procs
from tests.support.faults import ALICE, crashed
from tests.support.replies import streams_in_flight
from tests.support.stack import Stack
from tests.support.store import single_node
from threadline import RunView, Threadline
from threadline.shared import keys
from threadline.shared.config import load_settings

pytestmark = pytest.mark.anyio


def kill_workers(stack: Stack) -> None:
    """SIGKILL every generation worker (their process groups: the pool and its workers)."""
    for proc in stack.procs:
        if "workers" in str(proc.args) and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def restart_worker(stack: Stack) -> None:
    kill_workers(stack)
    stack.start_worker(f"worker-{time.monotonic_ns()}")


def step_of(view: RunView, name: str) -> str:
    found = [s for s in view.steps if s.name == name]
    return found[-1].status if found else ""


async def test_a_worker_killed_in_each_kind_of_step_loses_and_repeats_no_finished_step(
        tl: Threadline, flow: Stack) -> None:
    flow.script({"kind": "text", "chunks": [f"w{i} " for i in range(40)], "delay_ms": 100})
    run_id = await tl.start_workflow("everything", "alice", {"sleep": 3})
    # a synchronous function step, in the middle of its work
    wait_started(flow, "sync-hold")
    restart_worker(flow)
    wait_started(flow, "sync-hold", attempt=2)
    release(flow, "sync-hold")
    # a sleep: its timer is in Redis, not in the worker
    await wait_for(tl, run_id, lambda v: step_of(v, "sleep") == "sleeping")
    restart_worker(flow)
    # waiting for an event
    await wait_for(tl, run_id, lambda v: step_of(v, "approval") == "waiting", timeout=30)
    restart_worker(flow)
    await tl.send_workflow_event(run_id, "approval", "yes")
    # parallel branches: one async function held, the other done
    wait_started(flow, "branch-a")
    await wait_for(tl, run_id, lambda v: step_of(v, "slow_double") == "completed")
    restart_worker(flow)
    wait_started(flow, "branch-a", attempt=2)
    release(flow, "branch-a")
    # a child workflow, in the middle of its own step
    wait_started(flow, "child")
    restart_worker(flow)
    wait_started(flow, "child", attempt=2)
    release(flow, "child")
    # an agent step, in the middle of streaming its reply
    client = flow.store()
    deadline = time.monotonic() + 30
    while streams_in_flight(client) == 0:
        assert time.monotonic() < deadline, "the reply never streamed"
        time.sleep(0.02)
    time.sleep(0.3)
    restart_worker(flow)
    view = await tl.wait_workflow(run_id, 60)
    assert view.status == "completed", view.error
    result = msgspec.json.decode(view.result or b"")
    assert result["first"] == 3 and result["approval"] == "yes" and result["child"] == 4
    assert result["answer"] == "echo: hello"  # the second attempt's reply (nothing scripted any more)
    # every finished step ran once; each step killed in the middle ran once more, with the same key
    assert counts(flow, "add", "sync-hold", "branch-a", "double-2", "child") == {
        "add": 2, "sync-hold": 2, "branch-a": 2, "double-2": 1, "child": 2}  # add: the parent's and the child's
    for name in ("sync-hold", "branch-a", "child"):
        recorded = client.lrange(f"test:wf:keys:{name}", 0, -1)
        assert len(set(recorded)) == 1, recorded
    attempts = {s.name: s.attempt for s in view.steps}
    assert attempts["hold"] == 2 and attempts["async_hold"] == 2 and attempts["generate_text"] == 2
    assert attempts["add"] == attempts["create_thread"] == attempts["slow_double"] == 1
    # the agent's effects happened once: one thread, one prompt, one finished reply
    thread = await tl.continue_thread(result["threadId"], "alice")
    messages = (await thread.messages(num_items=50)).page
    assert [m.text for m in messages if m.role == "user"] == ["hello"]
    assert [m.text for m in messages if m.role == "assistant" and m.status == "success"] == ["echo: hello"]
    threads = await tl.store.threads.list("alice", num_items=100)
    assert [t.title for t in threads[1].page].count("everything") == 1
    client.close()


@single_node
async def test_a_run_sleeping_and_a_step_running_survive_a_valkey_restart(tmp_path: Path) -> None:
    valkey, port = procs.start_valkey(tmp_path / "valkey", persist=True)
    url = f"redis://127.0.0.1:{port}/0"
    # the lease is how long a silent step is taken for lost: Valkey's restart (and the last second of
    # renewals its AOF may lose) must fit in it, however slow a loaded machine makes the restart
    env = {"APP_MODULE": "tests.support.agents", "WORKFLOW_LEASE_MS": "15000", "WORKFLOW_POLL_MS": "50",
           "WORKERS": "1"}
    with open(tmp_path / "worker.log", "ab") as out:
        worker = subprocess.Popen([os.sys.executable, "-m", "threadline.workers", "generation"], cwd=procs.ROOT,  # type: ignore[attr-defined]
                                  env=procs.child_env(REDIS_URL=url, **env), stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async with Threadline(load_settings({"REDIS_URL": url, **env})) as tl:
            run_id = await tl.start_workflow("sleeper", "alice", 3)
            await wait_for(tl, run_id, lambda v: bool(v.steps) and v.steps[0].status == "sleeping")
            await asyncio.sleep(1.5)  # past the AOF's fsync (every second)
            valkey.kill()
            valkey.wait()
            valkey, _ = procs.start_valkey(tmp_path / "valkey", persist=True, port=port)
            client = redis.Redis.from_url(url)
            deadline = time.monotonic() + 30
            while int(client.get("test:wf:started:after-sleep") or 0) < 1:  # the sleep ended; the step runs
                assert time.monotonic() < deadline, "the run never woke up after the restart"
                time.sleep(0.05)
            time.sleep(1.5)
            valkey.kill()
            valkey.wait()
            valkey, _ = procs.start_valkey(tmp_path / "valkey", persist=True, port=port)
            client = redis.Redis.from_url(url)
            client.set("test:wf:release:after-sleep", 1)
            view = await wait_for(tl, run_id, lambda v: v.status == "completed", timeout=60)
            assert msgspec.json.decode(view.result or b"") == "after-sleep released"
            assert int(client.get("test:wf:ran:after-sleep") or 0) == 1  # the step was not run again
            client.close()
    finally:
        procs.stop(worker)
        procs.stop(valkey)


def crashed_worker(stack: Stack, name: str) -> None:
    """Wait until a job process of the worker pool ``name`` died at its crash point, then stop the
    pool (which would start another with the same crash point)."""
    log = stack.logs / f"{name}.log"
    deadline = time.monotonic() + 60
    while "is dead" not in log.read_text():
        assert time.monotonic() < deadline, f"{name} never reached its crash point"
        time.sleep(0.1)
    kill_workers(stack)


async def test_workers_killed_between_the_steps_of_split_workflow_writes_end_them_once(
        tl: Threadline, flow: Stack) -> None:
    """A worker dies right after the pass that starts a child run commits (before the child starts),
    another right after the child ends (before its parent hears): the outbox sweeper (a web
    process's) starts the child once and settles the parent's step once, and the run completes."""
    kill_workers(flow)
    flow.start_worker("crash-start", THREADLINE_CRASH_AT="follow:wf.start")
    run_id = await tl.start_workflow("parent_of_hold", "alice")
    crashed_worker(flow, "crash-start")
    (child_step,) = [s for s in (await tl.workflow_run(run_id)).steps if s.kind == "child"]
    assert child_step.status == "waiting" and child_step.child
    flow.start_worker("crash-child", THREADLINE_CRASH_AT="follow:wf.child")
    wait_started(flow, "child")  # the sweeper started the child, whose step runs on the new worker
    release(flow, "child")
    crashed_worker(flow, "crash-child")  # the child ended; its parent did not hear
    assert (await tl.workflow_run(child_step.child)).status == "completed"
    flow.start_worker("after-crashes")
    view = await tl.wait_workflow(run_id, 60)
    assert view.status == "completed" and msgspec.json.decode(view.result or b"") == 2
    assert counts(flow, "child") == {"child": 1}


async def test_a_worker_killed_while_it_walks_the_timers_leaves_the_timer_it_took_to_another(
        tl: Threadline, flow: Stack) -> None:
    """The worker walking the timers this interval dies right after taking a due timer, before its job
    is queued (crash point timers:fired): the timer comes due again a lease later and another worker's
    walk hands it over, so the sleeping run goes on and its next step runs once."""
    kill_workers(flow)
    flow.start_worker("crash-timers", THREADLINE_CRASH_AT="timers:fired")
    run_id = await tl.start_workflow("sleeper", "alice", 0.5)
    crashed_worker(flow, "crash-timers")
    assert counts(flow, "after-sleep") == {"after-sleep": 0}
    flow.start_worker("after-timers")
    wait_started(flow, "after-sleep")
    release(flow, "after-sleep")
    view = await tl.wait_workflow(run_id, 60)
    assert view.status == "completed" and msgspec.json.decode(view.result or b"") == "after-sleep released", view.error
    assert counts(flow, "after-sleep") == {"after-sleep": 1}


async def test_a_web_process_killed_after_starting_a_pooled_run_leaves_it_its_place(
        tl: Threadline, flow: Stack, tmp_path: Path) -> None:
    """A web process dies right after it started a run of a kind with a work pool, before the pool
    heard: the sweeper gives the run its place once; a second run waits for it and gets it after,
    and no place stays taken."""
    crashed(flow.redis_url, tmp_path, "POST", "/api/workflows", at="follow:wf.pool",
            json={"name": "pooled", "args": "crash-a"}, headers=ALICE, env=flow.env)
    wait_started(flow, "crash-a")  # the sweeper gave it its place
    second = await tl.start_workflow("pooled", "alice", "crash-b")
    assert (await tl.workflow_run(second)).status == "queued"  # the pool holds one: the first has it
    release(flow, "crash-a")
    wait_started(flow, "crash-b")
    release(flow, "crash-b")
    assert (await tl.wait_workflow(second, 30)).status == "completed"
    assert counts(flow, "crash-a", "crash-b") == {"crash-a": 1, "crash-b": 1}
    client = flow.store()
    try:  # (a run gives its place back just after it ends: a loaded machine may show that step late)
        deadline = time.monotonic() + 15
        while client.scard(keys.workflow_pool("pooled", "running")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.scard(keys.workflow_pool("pooled", "running"))
        assert not client.zcard(keys.workflow_pool("pooled", "queue"))
    finally:
        client.close()
