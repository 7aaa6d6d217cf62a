"""Workflow benchmark (prints figures): what a step costs beyond its own work, one run alone
(the gap from one step's end to the next one's start: journal, replay pass, two RQ hops), and
how many steps per second generation workers carry with many runs at once.

    .venv/bin/python -m bench.workflows

Real processes: an embedded Valkey and WORKERS generation worker processes (this module is
their app module); the runs are started and watched from this process.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.support import pct, redis_url
from tests.support import procs
from threadline.shared.agents import Agent
from threadline.shared.config import load_settings
from threadline.shared.workflows.definition import workflow
from threadline.shared.workflows.step import Step

RUNS = int(os.environ.get("BENCH_RUNS", "100"))
STEPS = int(os.environ.get("BENCH_STEPS", "10"))
WORKERS = 2


def noop(i: int) -> int:
    return i


@workflow("chain")
async def chain(step: Step, args: int) -> int:
    total = 0
    for i in range(args):
        total += int(await step.run(noop, i))
    return total


AGENTS = [Agent(name="mock", model="mock")]
WORKFLOWS = [chain]


async def measure(url: str) -> None:
    from threadline import Threadline

    rq_url = os.environ.get("RQ_REDIS_URL") or url  # (a Valkey of its own beside a cluster: bench.support)
    async with Threadline(load_settings({"REDIS_URL": url, "RQ_REDIS_URL": rq_url, "APP_MODULE": "bench.workflows"})) as tl:
        await tl.wait_workflow(await tl.start_workflow("chain", "warm", 2), 60)
        alone = await tl.wait_workflow(await tl.start_workflow("chain", "solo", STEPS * 2), 120)
        steps = alone.steps
        gaps = [float((b.first_started_at or 0) - (a.finished_at or 0)) for a, b in itertools.pairwise(steps)]
        t0 = time.perf_counter()
        ids = await asyncio.gather(*(tl.start_workflow("chain", f"u{i % 50}", STEPS) for i in range(RUNS)))
        views = [await tl.wait_workflow(run_id, 600) for run_id in ids]
        makespan = time.perf_counter() - t0
    assert all(v.status == "completed" for v in views), [v.error for v in views if v.status != "completed"]
    print(f"one run of {STEPS * 2} sequential steps: step end -> next step start p50 {pct(gaps, 50):.1f} ms, "
          f"p99 {pct(gaps, 99):.1f} ms; whole run {(alone.finished_at or 0) - alone.created_at} ms")
    durations = [float((v.finished_at or 0) - v.created_at) for v in views]
    worst = max((float((b.first_started_at or 0) - (a.finished_at or 0)), v.run_id, b.id) for v in views
                for a, b in itertools.pairwise(v.steps))
    print(f"{RUNS} runs x {STEPS} steps at once, {WORKERS} worker processes: {RUNS * STEPS / makespan:,.0f} steps/s, "
          f"makespan {makespan:.2f} s; a run took p50 {pct(durations, 50):.0f} ms, p99 {pct(durations, 99):.0f} ms; "
          f"longest gap {worst}")


def main() -> None:
    with redis_url() as url, tempfile.TemporaryDirectory() as tmp:
        env = procs.child_env(REDIS_URL=url, APP_MODULE="bench.workflows", WORKERS=str(WORKERS),
                              WORKFLOW_POLL_MS="50", LOG_LEVEL="warning")
        with open(Path(tmp) / "worker.log", "ab") as out:
            worker = subprocess.Popen([sys.executable, "-m", "threadline.workers", "generation"], cwd=procs.ROOT, env=env,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            asyncio.run(measure(url))
        finally:
            procs.stop(worker)


if __name__ == "__main__":
    main()
