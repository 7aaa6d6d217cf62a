"""Benchmarks' shared helpers: a throwaway Valkey server and percentiles."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.store import store_server


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """BENCH_REDIS_URL, or a fresh embedded Valkey for the run; with BENCH_CLUSTER=n (or the test
    suite's THREADLINE_TEST_CLUSTER) a local cluster of n primaries and a Valkey for RQ beside it
    (RQ_REDIS_URL, set for the run)."""
    if os.environ.get("BENCH_REDIS_URL"):
        yield os.environ["BENCH_REDIS_URL"]
        return
    primaries = int(os.environ.get("BENCH_CLUSTER") or os.environ.get("THREADLINE_TEST_CLUSTER") or 0)
    with tempfile.TemporaryDirectory() as tmp, store_server(Path(tmp), primaries) as url:
        yield url


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) of samples."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=1000, method="inclusive")[int(p * 10) - 1]


def group_rss_mb(group: int) -> dict[int, float]:
    """RSS in MB of every process of a process group (e.g. a worker pool and its workers), by pid."""
    sizes: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes[int(entry.name)] = int(line.split()[1]) / 1024
    return sizes
