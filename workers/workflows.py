"""The RQ jobs of durable workflows, and the timer loop that hands out their work.

``drive`` runs one replay pass of a run (shared.workflows.replay) and commits its
decisions; ``run_step`` runs one attempt of one step. Both run on the generation
queue, in the generation workers (many at once on one loop). Each generation
worker also fires due timers (shared.workflows.journal) every WORKFLOW_POLL_MS:
a run to replay, a step to hand out (first, again after a backoff, or again
because the worker running it stopped), a sleep that ended, an event that did
not come in time. Whoever fires a timer moves it a lease ahead, so each due
piece of work goes to one worker, and comes back if that worker dies.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import msgspec
import redis
from rq.queue import Queue

from threadline.shared import keys, metrics, runtime
from threadline.shared.errors import ChatError, NotFound
from threadline.shared.faults import crash_point
from threadline.shared.jobs import FAILURE_TTL_S, GENERATION
from threadline.shared.runtime import Runtime
from threadline.shared.tasks import cancel_and_wait
from threadline.shared.workflows.current import StepInfo
from threadline.shared.workflows.definition import RetryPolicy, workflow_named
from threadline.shared.workflows.errors import NonRetryable
from threadline.shared.workflows.journal import MAX_VALUE_BYTES, Journal
from threadline.shared.workflows.replay import Pass, failed, replay
from threadline.shared.workflows.step import Step
from threadline.workers.step_actions import perform

log = logging.getLogger(__name__)

DRIVE = "threadline.workers.workflows.drive"
RUN_STEP = "threadline.workers.workflows.run_step"
MAX_PASSES = 20  # a pass that keeps meeting newer history gives way to the timer
STEP_JOB_TIMEOUT_S = 24 * 3600  # RQ's bound; each attempt stops at its step's own timeout


class Engine:
    """What one event loop keeps for workflow jobs: the Python API on the loop's runtime, the
    journal, an RQ queue."""

    def __init__(self, rt: Runtime) -> None:
        from threadline import Threadline

        self.settings = rt.settings
        self.tl = Threadline(rt.settings, runtime=rt)
        self.journal = rt.workflows
        self.queue = Queue(GENERATION, connection=redis.Redis.from_url(rt.settings.rq_url))

    async def hand_over(self, fired: list[str]) -> None:
        """Enqueue the job a fired timer asked for (Journal.fire)."""
        if fired[0] == "drive":
            await self._enqueue(DRIVE, (fired[1],), f"wfd-{fired[1]}", 300)
        elif fired[0] == "step":
            await self.enqueue_step(fired[1], fired[2], int(fired[3]))

    async def enqueue_step(self, run_id: str, step_id: str, attempt: int) -> None:
        await self._enqueue(RUN_STEP, (run_id, step_id, attempt), f"wfs-{run_id}-{step_id}", STEP_JOB_TIMEOUT_S)

    async def _enqueue(self, func: str, args: tuple[Any, ...], prefix: str, timeout_s: int) -> None:
        job_id = f"{prefix}-{secrets.token_hex(4)}".replace(".", "_")
        await asyncio.to_thread(
            self.queue.enqueue_call, func, args=args, job_id=job_id,
            timeout=timeout_s,
            result_ttl=0, failure_ttl=FAILURE_TTL_S)  # the journal keeps the outcome; RQ need not


_engines: dict[int, Engine] = {}


def engine() -> Engine:
    """This loop's engine (its Redis pools belong to the loop)."""
    loop = asyncio.get_running_loop()
    found = _engines.get(id(loop))
    if found is None:
        found = _engines[id(loop)] = Engine(runtime.for_this_loop())
    return found


async def drive(run_id: str) -> str:
    """RQ job: replay the run and commit what it decided; hand the new steps to workers."""
    eng = engine()
    app_module = eng.settings.app_module
    for _ in range(MAX_PASSES):
        fields, steps, results = await eng.journal.snapshot(run_id)
        if fields.get("status") != "running":
            return "ended"
        try:
            wf = workflow_named(app_module, fields["name"])
            args = msgspec.json.decode(fields.get("args", "null"), type=wf.args_type)
        except (NotFound, msgspec.ValidationError) as exc:
            ops = [failed("error", f"cannot replay: {exc}")]
        else:
            p = Pass(wf, run_id, steps, results)
            ops = await replay(wf, p, Step(p, run_id, fields["userId"], app_module), args)
        outcome, handed = await eng.journal.commit(run_id, fields["version"], ops)
        finished = outcome == "ok" and any(op["op"] == "finish" for op in ops)
        metrics.workflow_passes.labels("finished" if finished else outcome).inc()
        if outcome == "stale":
            continue
        for step_id in handed:
            await eng.enqueue_step(run_id, step_id, 1)
        return outcome
    return "busy"


async def run_step(run_id: str, step_id: str, attempt: int) -> str:
    """RQ job: one attempt of one step, its lease renewed while it runs, its outcome journaled."""
    eng = engine()
    journal = eng.journal
    taken = await journal.take_step(run_id, step_id, attempt)
    if taken is None:
        return "skipped"
    raw, user_id, workflow, limited = taken
    started = time.perf_counter()
    spec = msgspec.json.decode(raw)
    policy = msgspec.convert(spec.get("retry", {}), RetryPolicy)
    info = StepInfo(run_id, step_id, attempt, user_id, limited)
    work = asyncio.ensure_future(asyncio.wait_for(
        perform(eng.tl, spec, info, eng.settings.workflow_retention_s), spec.get("timeoutS") or None))
    keeper = asyncio.create_task(_keep_lease(journal, info, work))
    result: bytes | None = None
    error, kind, again = "", "failed", True
    try:
        result = msgspec.json.encode(await work)
        if len(result) > MAX_VALUE_BYTES:
            result, again = None, False
            error = f"the result is too big to journal (at most {MAX_VALUE_BYTES} bytes of JSON)"
    except asyncio.CancelledError:
        if keeper.done():  # no longer wanted: the run ended or the attempt was given up
            metrics.workflow_steps.labels(workflow, "dropped").inc()
            return "dropped"
        raise
    except TimeoutError:
        error, kind = f"timed out after {spec.get('timeoutS')} s", "timed_out"
    except NonRetryable as exc:
        error, again = str(exc) or type(exc).__name__, False
    except Exception as exc:  # a result that is not JSON too
        error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ChatError) else f"{exc.code}: {exc.message}"
    finally:
        await cancel_and_wait(keeper)
    retry_ms = policy.delay_ms(attempt) if result is None and again and attempt < policy.attempts else -1
    metrics.workflow_step_seconds.labels(workflow).observe(time.perf_counter() - started)
    metrics.workflow_steps.labels(workflow, "done" if result is not None else "retry" if retry_ms >= 0
                                  else "failed").inc()
    if result is None:
        log.warning("workflow %s step %s attempt %d failed: %s", run_id, step_id, attempt, error)
    await journal.finish_step(run_id, step_id, attempt, result=result, error=error, retry_ms=retry_ms,
                              error_kind=kind)
    if retry_ms < 0 and (await journal.fire(keys.workflow_drive_timer(run_id)))[0] == "drive":
        await drive(run_id)  # the run's next pass, here and now: one job less per step
    return "done" if result is not None else "failed"


async def _keep_lease(journal: Journal, info: StepInfo, work: asyncio.Future[Any]) -> None:
    every = journal.lease_ms / 3000
    delay = every
    while not work.done():
        await asyncio.sleep(delay)
        try:
            wanted = await journal.renew_step(info.run_id, info.step_id, info.attempt)
        except ChatError as exc:  # Redis away a moment: try again soon, the lease has room for it
            log.warning("could not renew the lease of %s: %s", info.key, exc)
            delay = min(every, 0.2)
            continue
        delay = every
        if not wanted:
            work.cancel()
            return


async def fire_timers(poll_s: float) -> None:
    """Fire due workflow timers, forever (a worker's background task): every ``poll_s``, the first
    worker to ask walks the partitions (a timer is due within about ``poll_s``, whatever the number
    of workers; a walk costs the store a read of each of 1,024 partitions)."""
    eng = engine()
    every_ms = int(poll_s * 1000)
    while True:
        try:
            if await eng.journal.take_tick(every_ms):
                for member in await eng.journal.due():
                    fired = await eng.journal.fire(member)
                    if fired[0] != "none":  # fault tests: the walker dies with the timer taken, its job not queued
                        crash_point("timers:fired")
                    await eng.hand_over(fired)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: the next round tries again
            log.warning("workflow timers: %s", exc)
        await asyncio.sleep(poll_s)

