"""Benchmarks' shared helpers: a throwaway Valkey server and percentiles."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support import procs


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """BENCH_REDIS_URL, or a fresh embedded Valkey for the run."""
    if os.environ.get("BENCH_REDIS_URL"):
        yield os.environ["BENCH_REDIS_URL"]
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = procs.start_valkey(Path(tmp))
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            procs.stop(proc)


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) of samples."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=1000, method="inclusive")[int(p * 10) - 1]
