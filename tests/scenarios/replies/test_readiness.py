"""/readyz tells the truth about generation workers and the index."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support import procs
from tests.support.stack import run_stack


def readiness(base: str, want: int, timeout: float = 40, **fields: object) -> dict[str, object]:
    """The first /readyz answer with status ``want`` and the given fields."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{base}/readyz")
        if r.status_code == want and all(r.json()[k] == v for k, v in fields.items()):
            return r.json()
        assert time.monotonic() < deadline, r.json()
        time.sleep(0.2)


def test_readiness_fails_once_no_generation_worker_heartbeats(tmp_path: Path) -> None:
    with run_stack(tmp_path, workers=1, index=True) as stack:
        ready = readiness(stack.web, 200)
        assert ready == {"ok": True, "redis": True, "generationWorkers": 1, "index": True}
        assert httpx.get(f"{stack.web}/healthz").status_code == 200
        worker = next(p for p in stack.procs if "generation" in " ".join(map(str, p.args)))
        procs.stop(worker)  # SIGTERM: the worker unregisters as it goes
        readiness(stack.web, 503, generationWorkers=0)
        assert httpx.get(f"{stack.web}/healthz").status_code == 200  # alive, but not ready
        index = next(p for p in stack.procs if "index" in " ".join(map(str, p.args)))
        procs.stop(index)
        readiness(stack.web, 503, index=False)
