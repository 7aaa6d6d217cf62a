"""An RQ worker that runs many jobs at once on one event loop.

RQ stays the queue and the distribution engine: the main thread runs RQ's own
work loop (dequeue, registries, worker heartbeats, maintenance, signals), but
it dequeues only while a slot is free, and ``execute_job`` hands each job to an
event loop in a second thread instead of running it there and then. Each job
keeps RQ's semantics: its own Execution in the started registry, its own
timeout, job heartbeats, success/failure recorded with RQ's own handlers (run
on one bookkeeping thread, so RQ's worker object is never used by two threads
at once for a job's end).

A job function runs on the loop when it is a coroutine function or carries an
``async_impl`` (the coroutine version of a sync entry point); any other job
runs in the thread pool. Synchronous work that a job does off the loop (e.g.
tools) uses the same pool, which is the loop's default executor.

Shutdown: SIGTERM stops dequeuing; jobs in flight get ``drain_s`` to finish,
then are cancelled (the job sees CancelledError and ends cleanly) and recorded
as failed. A SIGKILLed process leaves its jobs to the stream reaper, which ends
their replies within STREAM_STALE_MS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

from threadline.shared.runtime import process_settings

try:  # libuv's loop: a reply's timers, sockets and callbacks cost the worker less CPU than asyncio's own loop
    import uvloop
    new_event_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # (where uvloop is not installed: Windows)
    new_event_loop = asyncio.new_event_loop

HEARTBEAT_EVERY_S = 20.0
SLOT_POLL_S = 1.0
# The longest the main thread blocks in one dequeue. A stop signal the kernel hands to another of
# the process's threads only sets Python's flag; the main thread runs the handler once its blocking
# call returns, so this bounds how long SIGTERM can go unheard (RQ's own wait is ~7 minutes).
DEQUEUE_WAIT_S = 1
EXIT_GRACE_S = 10.0  # after the drain, the most the rest of a shutdown may take
WAKE_SIGNAL = signal.SIGUSR1


class ConcurrentWorker(SimpleWorker):
    """Up to ``concurrency`` jobs at once on one event loop (default: WORKER_CONCURRENCY and
    WORKER_DRAIN_S from the settings)."""

    def __init__(self, *args: Any, concurrency: int | None = None, drain_s: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = process_settings()
        self.concurrency = concurrency or settings.worker_concurrency
        self.drain_s = drain_s if drain_s is not None else settings.worker_drain_s
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._tasks: dict[str, asyncio.Task[Any]] = {}  # execution id -> task (touched on the loop only)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(32, self.concurrency // 2),
                                                           thread_name_prefix="job-sync")
        self._books = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rq-books")
        self._prep = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="rq-start")

    # -- the loop ------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            ready = threading.Event()

            def serve() -> None:
                loop = new_event_loop()
                loop.set_default_executor(self._pool)
                asyncio.set_event_loop(loop)
                self._loop = loop
                ready.set()
                loop.run_forever()

            threading.Thread(target=serve, name="job-loop", daemon=True).start()
            ready.wait()
            assert self._loop is not None
            loop = self._loop
            loop.call_soon_threadsafe(lambda: loop.create_task(self._heartbeats()))
        return self._loop

    def in_flight(self) -> int:
        return self.concurrency - self._slots._value

    # -- RQ's work loop, with slots ---------------------------------------------------

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """Dequeue only once a slot is free; keep heartbeating while every slot is busy."""
        while not self._slots.acquire(timeout=SLOT_POLL_S):
            self.heartbeat()
            if self._stop_requested:
                return None
        try:
            wait = None if timeout is None else min(timeout, DEQUEUE_WAIT_S)  # None: burst mode, no wait
            result = super().dequeue_job_and_maintain_ttl(wait, max_idle_time)
        except BaseException:
            self._slots.release()
            raise
        if result is None:
            self._slots.release()
        return result

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Start the job on the loop and return at once (its slot is taken): the main
        thread goes back to dequeuing while RQ's bookkeeping for the start runs on a pool."""
        asyncio.run_coroutine_threadsafe(self._perform(job, queue), self.loop)

    def _prepare(self, job: Job) -> Any:
        execution = self.prepare_execution(job)
        self.prepare_job_execution(job, remove_from_intermediate_queue=len(self.queues) == 1)
        job.started_at = now()
        return execution

    async def _perform(self, job: Job, queue: Queue) -> None:
        loop = asyncio.get_running_loop()
        try:
            execution = await loop.run_in_executor(self._prep, self._prepare, job)
        except BaseException:
            self.log.exception("could not start job %s", job.id)
            self._slots.release()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks[execution.id] = task
        try:
            timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
            try:
                async with asyncio.timeout(timeout if timeout and timeout > 0 else None):
                    value = await self._call(job)
            except TimeoutError:
                raise JobTimeoutException(f"Task exceeded maximum timeout value ({timeout} seconds)") from None
            await loop.run_in_executor(self._books, self._finalize_success, job, queue, execution, value)
        except BaseException:
            info = sys.exc_info()
            if isinstance(info[1], asyncio.CancelledError):
                info = _exc_info(RuntimeError("the worker stopped before the job finished"))
            await loop.run_in_executor(self._books, self._finalize_failure, job, queue, execution, info)
        finally:
            if not self.executions:  # the last job ended: the worker is idle (for ``rq info``)
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(self._books, self.set_state, WorkerStatus.IDLE)
            self._tasks.pop(execution.id, None)
            self._slots.release()

    async def _call(self, job: Job) -> Any:
        func = job.func
        impl = getattr(func, "async_impl", None)
        if impl is not None:
            return await impl(*job.args, **job.kwargs, job_id=job.id)
        if inspect.iscoroutinefunction(func):
            return await func(*job.args, **job.kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, job.perform)

    async def _heartbeats(self) -> None:
        """Keep every running job's execution alive in RQ's started registry."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_S)
            for execution in list(self.executions.values()):
                job = getattr(execution, "_job", None)
                if job is None:
                    continue
                try:
                    await loop.run_in_executor(self._books, self.maintain_heartbeats, job, execution)
                except Exception as exc:  # Redis away: the next round tries again
                    self.log.warning("heartbeat of job %s failed: %s", job.id, exc)

    def prepare_execution(self, job: Job) -> Any:
        execution = super().prepare_execution(job)
        execution._job = job  # for the heartbeats
        return execution

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Busy while any job runs (what ``rq info`` should say); written only when it changes."""
        if state == WorkerStatus.IDLE and self.executions:
            state = WorkerStatus.BUSY
        if state == self.get_state():
            return
        super().set_state(state, pipeline)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's worker heartbeat, at most once a second from the work loop (it runs per dequeue)."""
        recent = self.last_heartbeat is not None and (now() - self.last_heartbeat).total_seconds() < 1.0
        if timeout is None and pipeline is None and recent:
            return
        super().heartbeat(timeout, pipeline)

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        """No scheduler in this worker (``rq worker-pool`` asks for one).

        RQ forks its scheduler from the worker, and the fork inherits the worker's
        Redis sockets. This worker's main thread is nearly always blocked in a
        dequeue; after a SIGKILL the scheduler would keep that blocked dequeue
        alive, and the next job would be handed to a dead process. Generation jobs
        are never scheduled; run ``rq worker --with-scheduler`` elsewhere for jobs that are.
        """
        self.log.info("worker %s: no scheduler in a concurrent worker", self.name)

    # -- stopping ------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]  # (RQ leaves it unannotated)
        signal.signal(WAKE_SIGNAL, self._woken)

    def _woken(self, signum: int, frame: Any) -> None:
        if self._stop_requested:
            raise StopRequested()

    def _shutdown(self) -> None:
        """Warm shutdown: stop dequeuing at once (jobs run on the loop, never in the main thread,
        so the main thread can always leave its dequeue); ``teardown`` then drains the jobs."""
        self._stop_requested = True
        self.set_shutdown_requested_date()  # type: ignore[no-untyped-call]  # (RQ leaves it unannotated)
        if threading.current_thread() is threading.main_thread():
            raise StopRequested()
        os.kill(os.getpid(), WAKE_SIGNAL)  # asked from RQ's command thread: wake the main thread

    def request_stop_execution(self, execution_id: str) -> None:
        """RQ's "stop job" command: cancel that job's task (it ends as stopped)."""
        task = self._tasks.get(execution_id)
        execution = self.executions.get(execution_id)
        if task is None or execution is None or self._loop is None:
            self.log.warning("not running execution %s; command ignored", execution_id)
            return
        self._stopped_job_id = execution.job_id
        self._loop.call_soon_threadsafe(task.cancel)

    def teardown(self) -> None:
        self.drain()
        _exit_within(EXIT_GRACE_S, self.log)
        super().teardown()  # type: ignore[no-untyped-call]  # (RQ leaves it unannotated)

    def drain(self) -> None:
        """Let jobs in flight finish for up to ``drain_s``, then cancel the rest and record them."""
        if self._loop is None:
            return
        deadline = time.monotonic() + self.drain_s
        if self.in_flight():
            self.log.info("worker %s: letting %d jobs finish (up to %.0fs)", self.name, self.in_flight(),
                          self.drain_s)
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.in_flight():
            self.log.warning("worker %s: cancelling %d jobs still running", self.name, self.in_flight())
            self._loop.call_soon_threadsafe(lambda: [t.cancel() for t in list(self._tasks.values())])
            end = time.monotonic() + 10
            while self.in_flight() and time.monotonic() < end:
                time.sleep(0.05)
        self._books.shutdown(wait=True)


def _exit_within(seconds: float, log: Any) -> None:
    """End the process ``seconds`` from now unless it has ended by then: once its jobs are done and
    recorded, nothing of its shutdown (RQ's, a library's thread joined at exit) may keep it from
    exiting (a child once stayed a minute past its last job after a SIGTERM, in the suite)."""
    def force() -> None:
        log.warning("shutdown still not over %.0fs after the last job ended: exiting now", seconds)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(seconds, force)
    timer.daemon = True  # (it never holds the process itself)
    timer.start()


def _exc_info(exc: BaseException) -> Any:
    try:
        raise exc
    except BaseException:
        return sys.exc_info()
