"""Many replies at once in one generation worker process (workers.concurrent), with RQ's semantics."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from tests.scenarios.replies.helpers import token
from tests.support import procs
from tests.support.stack import Stack, run_stack
from tests.support.store import flush
from threadline.shared import keys
from threadline.workers.queues import GENERATION

HEADERS = {"Authorization": f"Bearer {token('alice')}"}


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack without a generation worker: each test starts the one it needs."""
    with run_stack(tmp_path_factory.mktemp("conc"), webs=1, worker=False,
                   env={"GENERATION_TIMEOUT_S": "4", "LLM_TIMEOUT_S": "30"}) as s:
        yield s


@pytest.fixture
def conc(bare: Stack) -> Iterator[Stack]:
    """The bare stack, emptied; workers a test starts are stopped after it."""
    flush(bare.redis_url)
    bare.reset_llm()
    before = len(bare.procs)
    yield bare
    for proc in bare.procs[before:]:
        procs.stop(proc)
    del bare.procs[before:]


def send(stack: Stack, agent: str, prompt: str, thread_id: str | None = None) -> str:
    tid = thread_id or httpx.post(f"{stack.web}/api/threads", json={}, headers=HEADERS).json()["threadId"]
    r = httpx.post(f"{stack.web}/api/threads/{tid}/messages", json={"prompt": prompt, "agentName": agent},
                   headers=HEADERS)
    assert r.status_code == 201, r.text
    return tid


def replies(stack: Stack, tid: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{stack.web}/api/threads/{tid}/messages?numItems=100", headers=HEADERS).json()["page"]
    return sorted((m for m in page if m["role"] == "assistant"), key=lambda m: (m["order"], m["stepOrder"]))


def until(predicate: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def ended(stack: Stack, tids: list[str], want: int = 1) -> bool:
    return all(len([m for m in replies(stack, t) if m["status"] != "pending"]) >= want for t in tids)


def streams_of(stack: Stack, tid: str) -> list[dict[str, str]]:
    r = stack.store(decode_responses=True)
    out = [r.hgetall(k) for k in r.scan_iter(match=keys.stream(tid, "*")) if r.type(k) == "hash"]
    return sorted(out, key=lambda s: int(s["order"]))


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    os.killpg(proc.pid, sig)


@pytest.mark.timeout(120)
def test_one_worker_runs_many_jobs_at_once_with_true_rq_registries(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1", WORKER_CONCURRENCY="64", MOCK_LLM_DELAY_MS="50", MOCK_LLM_WORDS="20")
    conn = conc.rq()
    started = StartedJobRegistry(GENERATION, connection=conn)
    peak = [0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak[0] = max(peak[0], started.count)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    tids = [send(conc, "mock", f"hello {i}") for i in range(30)]
    until(lambda: ended(conc, tids), what="thirty replies")
    sampling.set()
    sampler.join()
    assert peak[0] > 10  # one process, many jobs in RQ's started registry at once
    spans = [(int(s["startedAt"]), int(s["endedAt"])) for t in tids for s in streams_of(conc, t)]
    overlap = max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)
    assert overlap > 10
    assert all(replies(conc, t)[0]["status"] == "success" for t in tids)
    finished = FinishedJobRegistry(GENERATION, connection=conn)
    until(lambda: finished.count == 30 and started.count == 0, 20, "registries settle")
    assert FailedJobRegistry(GENERATION, connection=conn).count == 0
    procs.stop(worker)


@pytest.mark.timeout(120)
def test_a_threads_replies_keep_their_order_while_other_threads_run_in_parallel(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1", MOCK_LLM_DELAY_MS="40", MOCK_LLM_WORDS="10")
    first = send(conc, "mock", "one")
    for prompt in ("two", "three"):
        send(conc, "mock", prompt, first)
    others = [send(conc, "mock", f"other {i}") for i in range(3)]
    until(lambda: ended(conc, [first], 3) and ended(conc, others), what="all replies")
    mine = streams_of(conc, first)
    assert len(mine) == 3
    for earlier, later in itertools.pairwise(mine):
        assert int(later["startedAt"]) >= int(earlier["endedAt"])  # first in, first out in the thread
    assert any(int(streams_of(conc, t)[0]["startedAt"]) < int(mine[0]["endedAt"]) for t in others)  # in parallel
    procs.stop(worker)


@pytest.mark.timeout(120)
def test_a_job_timeout_ends_one_reply_and_not_its_neighbours(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1")
    conc.script({"kind": "hang", "chunks": ["I will never", " finish"]})
    hung = send(conc, "echo", "hang please")
    until(lambda: bool(streams_of(conc, hung)), what="the hanging reply starts")
    neighbours = [send(conc, "mock", f"fine {i}") for i in range(3)]
    until(lambda: ended(conc, [hung, *neighbours]), what="replies end")
    reply = replies(conc, hung)[0]
    assert reply["status"] == "failed" and "stopped before it finished" in reply["error"]
    assert reply["text"] == "I will never finish"
    assert all(replies(conc, t)[0]["status"] == "success" for t in neighbours)
    failed = FailedJobRegistry(GENERATION, connection=conc.rq())
    until(lambda: failed.count == 1, 10, "the job is in the failed registry")
    procs.stop(worker)


@pytest.mark.timeout(120)
def test_sigterm_lets_replies_in_flight_finish(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1", MOCK_LLM_DELAY_MS="100", MOCK_LLM_WORDS="15")
    tids = [send(conc, "mock", f"drain {i}") for i in range(5)]
    until(lambda: all(streams_of(conc, t) for t in tids), what="all five stream")
    kill_group(worker, signal.SIGTERM)
    worker.wait(60)
    assert all(replies(conc, t)[0]["status"] == "success" for t in tids)


@pytest.mark.timeout(120)
def test_sigterm_past_the_drain_bound_ends_the_rest_cleanly(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1", WORKER_DRAIN_S="0.5", MOCK_LLM_DELAY_MS="300", MOCK_LLM_WORDS="40")
    tids = [send(conc, "mock", f"long {i}") for i in range(4)]
    retried = send(conc, "mock-retry", "retry me")
    until(lambda: all(streams_of(conc, t) for t in [*tids, retried]), what="all stream")
    kill_group(worker, signal.SIGTERM)
    worker.wait(60)
    for t in tids:  # failed at once with a clear error, none left pending
        reply = replies(conc, t)[0]
        assert reply["status"] == "failed" and "stopped before it finished" in reply["error"], reply
    # the retrying agent's reply was handed to the reaper, which asked for it again
    conc.start_worker(WORKERS="1")
    until(lambda: any(m["status"] == "success" for m in replies(conc, retried)), what="the retried reply")


@pytest.mark.timeout(120)
def test_sigkill_with_20_replies_in_flight_ends_all_20(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1", MOCK_LLM_DELAY_MS="300", MOCK_LLM_WORDS="60")
    tids = [send(conc, "mock", f"doomed {i}") for i in range(20)]
    until(lambda: all(streams_of(conc, t) for t in tids), what="all twenty stream")
    kill_group(worker, signal.SIGKILL)
    worker.wait()
    until(lambda: ended(conc, tids), 30, "the reaper ends every reply")  # STREAM_STALE_MS is 3 s here
    for t in tids:
        assert [m["status"] for m in replies(conc, t)] == ["failed"]


@pytest.mark.timeout(120)
def test_prompts_waiting_in_a_killed_worker_are_answered_by_the_next(conc: Stack) -> None:
    """A worker takes all of a thread's jobs at once: the first answers, the others wait for their turn
    inside it. SIGKILL it: the first reply fails (the reaper), and the two that waited are run again by
    another worker, in order, once each."""
    worker = conc.start_worker(WORKERS="1", MOCK_LLM_DELAY_MS="200", MOCK_LLM_WORDS="40")
    tid = send(conc, "mock", "first")
    send(conc, "mock", "second", tid)
    send(conc, "mock", "third", tid)
    started = StartedJobRegistry(GENERATION, connection=conc.rq())
    until(lambda: streams_of(conc, tid) and len(started.get_job_ids(cleanup=False)) == 3,
          what="the first streams while the others wait in the same worker")
    kill_group(worker, signal.SIGKILL)
    worker.wait()
    conc.start_worker(WORKERS="1")
    until(lambda: ended(conc, [tid], 3), 60, "all three prompts answered")
    time.sleep(1.0)  # time enough for a duplicate to show up
    answered = [m for m in replies(conc, tid) if m["stepOrder"] == max(
        r["stepOrder"] for r in replies(conc, tid) if r["order"] == m["order"])]
    assert [m["status"] for m in answered] == ["failed", "success", "success"], answered
    assert len({m["order"] for m in answered}) == 3 == len(answered)


@pytest.mark.timeout(120)
def test_a_blocking_sync_tool_does_not_stall_other_replies(conc: Stack) -> None:
    worker = conc.start_worker(WORKERS="1")
    r = conc.store()
    blocked = send(conc, "blocker", 'tool:block {"city": "x"}')
    until(lambda: r.exists("test:block-started") == 1, what="the tool runs")
    others = [send(conc, "mock", f"meanwhile {i}") for i in range(3)]
    until(lambda: ended(conc, others), 30, "others finish while the tool still blocks")
    assert r.exists("test:release") == 0 and not ended(conc, [blocked], 2)
    r.set("test:release", "1")
    until(lambda: ended(conc, [blocked], 2), what="the blocked reply goes on")
    procs.stop(worker)


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """Send ``sig`` to one thread of another process, as the kernel may pick any thread for a signal."""
    import ctypes
    import platform

    number = {"x86_64": 234, "aarch64": 131}.get(platform.machine())
    if number is None:
        pytest.skip(f"no tgkill number known for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.mark.timeout(120)
def test_sigterm_handed_to_any_thread_stops_an_idle_worker(conc: Stack) -> None:
    """The kernel hands a process's signal to any thread that does not block it: the worker stops
    on its own when SIGTERM lands on a thread other than the one blocked in RQ's dequeue."""
    with open(conc.logs / "lone-worker.log", "ab") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "-w", "threadline.workers.worker.GenerationWorker",
             "-u", conc.rq_url, GENERATION], cwd=procs.ROOT,
            env=procs.child_env(REDIS_URL=conc.redis_url, **conc.env), stdout=out, stderr=subprocess.STDOUT)
    conc.procs.append(worker)
    tid = send(conc, "mock", "wake every thread up")
    until(lambda: any(m["status"] == "success" for m in replies(conc, tid)), what="a reply")
    threads = [int(t) for t in os.listdir(f"/proc/{worker.pid}/task") if int(t) != worker.pid]
    assert threads, "the worker runs its jobs on threads of its own"
    time.sleep(0.5)  # back in its blocking dequeue
    _tgkill(worker.pid, threads[-1], signal.SIGTERM)
    try:
        worker.wait(30)  # RQ alone would wait for its dequeue to time out: about 7 minutes
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker ignored SIGTERM") from None
    assert worker.returncode == 0
