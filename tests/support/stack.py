"""The whole product as real processes: Valkey, a scripted LLM, web servers, RQ workers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.support import procs
from tests.support.store import settings_for, store_server, sync_client
from threadline.shared.config import Settings
from threadline.shared.storage.client import SyncClient

SECRET = "stack-secret-0123456789abcdef0123456789"


@dataclass
class Stack:
    redis_url: str
    llm: str
    webs: list[str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # what every process of the stack was given
    rq_url: str = ""  # the Redis of RQ's queues and registries (the store's unless apart)

    def store(self, **options: Any) -> SyncClient:
        """A blocking client of the stack's store (a cluster client on a cluster)."""
        return sync_client(self.redis_url, **options)

    def settings(self, **extra: str) -> Settings:
        """Settings of a process of the stack's own (the Python API's), with ``extra`` on top."""
        return settings_for(self.redis_url, self.rq_url, **extra)

    def rq(self) -> redis.Redis:
        """A client of the Redis of RQ's queues and registries."""
        client = sync_client(self.rq_url or self.redis_url)
        assert isinstance(client, redis.Redis)  # RQ's Redis is never a cluster
        return client

    def start_worker(self, name: str = "worker-extra", **env: str) -> subprocess.Popen[bytes]:
        """Another generation worker process (its own process group), with ``env`` on top."""
        return self._start("generation", name, env)

    def start_index(self, name: str = "index-extra", **env: str) -> subprocess.Popen[bytes]:
        """An index process (its own process group), with ``env`` on top (another EMBEDDING_MODEL...)."""
        return self._start("index", name, env)

    def _start(self, kind: str, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "threadline.workers", kind], cwd=procs.ROOT,
                env=procs.child_env(REDIS_URL=self.redis_url, AUTH_SECRET=SECRET, **{**self.env, **env}),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    @property
    def web(self) -> str:
        return self.webs[0]

    def script(self, *responses: dict) -> None:  # type: ignore[type-arg]
        httpx.post(f"{self.llm}/_script", json={"responses": list(responses)}).raise_for_status()

    def llm_requests(self) -> list[dict]:  # type: ignore[type-arg]
        return httpx.get(f"{self.llm}/_requests").json()

    def reset_llm(self) -> None:
        httpx.post(f"{self.llm}/_reset").raise_for_status()


@contextlib.contextmanager
def run_stack(tmp: Path, *, webs: int = 1, workers: int = 2, env: dict[str, str] | None = None,
              index: bool = False, worker: bool = True, redis_url: str | None = None) -> Iterator[Stack]:
    """``worker=False``: no generation worker (start them with ``Stack.start_worker``); ``redis_url``:
    a Redis of the caller's (kept after the stack stops) instead of a Valkey of the stack's own."""
    started: list[subprocess.Popen[bytes]] = []
    own_store = contextlib.ExitStack()
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        if redis_url is None:  # a Valkey (or a local cluster: tests/support/store.py) of the stack's own
            redis_url = own_store.enter_context(store_server(tmp / "valkey"))
        def fake_llm(port: int) -> subprocess.Popen[bytes]:
            with open(tmp / "llm.log", "ab") as out:
                return subprocess.Popen([sys.executable, "-m", "tests.support.fake_llm"], cwd=procs.ROOT,
                                        env=procs.child_env(PORT=str(port)), stdout=out, stderr=subprocess.STDOUT)
        llm, lport = procs.start_listening(fake_llm)
        started.append(llm)
        common = {
            "APP_MODULE": "tests.support.agents",
            "LLM_BASE_URL": f"http://127.0.0.1:{lport}/v1",
            "LLM_MODEL": "fake",
            "LLM_TIMEOUT_S": "3",
            "STREAM_STALE_MS": "3000",
            "STREAM_GRACE_MS": "60000",
            "MOCK_LLM_DELAY_MS": "5",
            "RATE_LIMIT_SENDS_PER_MINUTE": "0",
            "WORKERS": str(workers),
            # files and secrets of this stack's own: a blob store shared with another stack (the
            # other pass of .ci/run) lost a file its twin test erased (the same words, the same content)
            "DATA_DIR": str(tmp / "data"),
            **(env or {}),
        }
        bases = []
        for i in range(webs):
            proc, port = procs.start_web(redis_url, auth_secret=SECRET, extra_env=common, log=tmp / f"web{i}.log")
            started.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
        if worker:
            with open(tmp / "worker.log", "ab") as out:
                started.append(subprocess.Popen(
                    [sys.executable, "-m", "threadline.workers", "generation"], cwd=procs.ROOT,
                    env=procs.child_env(REDIS_URL=redis_url, AUTH_SECRET=SECRET, **common),
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                ))
        if index:
            with open(tmp / "index.log", "ab") as out:
                started.append(subprocess.Popen(
                    [sys.executable, "-m", "threadline.workers", "index"], cwd=procs.ROOT,
                    env=procs.child_env(REDIS_URL=redis_url, AUTH_SECRET=SECRET, **common),
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        rq_url = common.get("RQ_REDIS_URL") or os.environ.get("RQ_REDIS_URL") or redis_url
        yield Stack(redis_url, f"http://127.0.0.1:{lport}", bases, tmp, started, common, rq_url)
    finally:
        for proc in reversed(started):
            procs.stop(proc)
        own_store.close()
