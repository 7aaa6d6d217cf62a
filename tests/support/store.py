"""The store the tests run on: one Valkey, or (with ``THREADLINE_TEST_CLUSTER=n``) a local Redis
Cluster of ``n`` Valkey primaries with a single Valkey for RQ beside it, so that the same tests run
on both shapes. In cluster mode RQ_REDIS_URL is set in this process's environment for the
session, so every process a test starts (and every Settings read from the environment) uses it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import procs
from threadline.shared.config import Settings, load_settings
from threadline.shared.storage.client import SyncClient, connect_sync

CLUSTER = int(os.environ.get("THREADLINE_TEST_CLUSTER") or 0)  # primaries; 0: one node

single_node = pytest.mark.skipif(CLUSTER > 0, reason="about one Valkey process (its restart, its files): "
                                                      "the cluster's own fault tests cover a cluster")


@contextlib.contextmanager
def store_server(tmp: Path, primaries: int = CLUSTER) -> Iterator[str]:
    """A store for a test run (or a stack): its REDIS_URL. On a cluster (of ``primaries``), RQ_REDIS_URL
    names the Valkey of RQ for as long as it runs."""
    if not primaries:
        proc, port = procs.start_valkey(tmp)
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            procs.stop(proc)
        return
    from tests.support.cluster import local_cluster

    with local_cluster(tmp / "cluster", primaries) as ports:
        rq, rq_port = procs.start_valkey(tmp / "rq")
        before = os.environ.get("RQ_REDIS_URL")
        os.environ["RQ_REDIS_URL"] = f"redis://127.0.0.1:{rq_port}/0"
        try:
            yield f"redis://127.0.0.1:{ports[0]}/0"
        finally:
            if before is None:
                os.environ.pop("RQ_REDIS_URL", None)
            else:
                os.environ["RQ_REDIS_URL"] = before
            procs.stop(rq)


_opened: list[SyncClient] = []  # blocking clients the tests made and have not closed yet


def sync_client(url: str, **options: Any) -> SyncClient:
    """A blocking client of a test's store (a cluster client on a cluster; ``options``: redis-py's), closed
    at the end of the test, module or session that made it (``closing_clients``)."""
    client = connect_sync(url, **options)
    _opened.append(client)
    return client


@contextlib.contextmanager
def closing_clients() -> Iterator[None]:
    """Close the clients ``sync_client`` makes inside. Left to the garbage collector, a client in a
    reference cycle (a cluster client always is) may be collected socket first, and the socket warns
    that it was never closed: in whichever test runs then, or at the end of the session."""
    start = len(_opened)
    try:
        yield
    finally:
        made = _opened[start:]
        del _opened[start:]
        for client in made:
            client.close()


def settings_for(url: str, rq_url: str | None = None, **extra: str) -> Settings:
    """Settings of the store at ``url`` (and RQ's Redis: ``rq_url``, else the session's on a cluster),
    with ``extra`` on top."""
    rq = rq_url or (os.environ.get("RQ_REDIS_URL") if CLUSTER else None) or url
    return load_settings({"REDIS_URL": url, "RQ_REDIS_URL": rq, **extra})


def flush(url: str) -> None:
    """Empty the store (every primary of a cluster) and RQ's Redis when it is apart."""
    with connect_sync(url) as client:
        client.flushdb()
    if CLUSTER and (rq := os.environ.get("RQ_REDIS_URL")):
        with connect_sync(rq) as client:
            client.flushdb()
