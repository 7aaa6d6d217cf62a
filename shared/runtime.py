"""The parts one process runs with, built once from its settings and closed once.

The web app (server.app), the Python API (threadline.Threadline) and the
workers each hold one ``Runtime`` instead of wiring the store, the file store,
the usage ledger, the rate limits, the workflow journal and the memory search
themselves. A process whose jobs run on several event loops keeps one per loop
(``for_this_loop``): a Redis pool belongs to the loop that opened it.
"""

from __future__ import annotations

import asyncio
from functools import cache

from threadline.shared.config import Settings, load_settings
from threadline.shared.files.store import FileStore
from threadline.shared.schedules import Schedules
from threadline.shared.storage.client import Client, connect
from threadline.shared.threads import Store
from threadline.shared.usage.ledger import UsageLedger
from threadline.shared.usage.limits import Limits
from threadline.shared.vectors.search import MemorySearch, memory_search_for
from threadline.shared.workflows.journal import Journal


class Runtime:
    """Settings, one Redis pool and every store over it."""

    def __init__(self, settings: Settings, *, redis: Client | None = None,
                 max_connections: int = 64) -> None:
        """``redis``: a client to use instead of opening one (the caller keeps closing it)."""
        self.settings = settings
        self._owns_redis = redis is None
        self.redis = redis if redis is not None else connect(settings.redis_url, max_connections=max_connections)
        # RQ's job records, read to tell a queued or running reply from a dead one (RQ_REDIS_URL)
        self.rq = connect(settings.rq_url, max_connections=16) if settings.rq_apart else self.redis
        self.store = store = Store(self.redis)
        store.items.namespace_bytes = settings.items_namespace_bytes
        self.files = FileStore.from_settings(self.redis, store.scripts, store.outbox, settings)
        self.usage = UsageLedger.from_settings(self.redis, store.scripts, settings)
        self.limits = Limits.from_settings(self.redis, store.scripts, settings)
        self.workflows = Journal.from_settings(self.redis, store.scripts, settings)
        self.schedules = Schedules(self.redis, store.scripts)
        self.memory: MemorySearch = memory_search_for(settings, store, self.usage)

    async def close(self) -> None:
        if self.rq is not self.redis:
            await self.rq.aclose()
        if self._owns_redis:
            await self.redis.aclose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@cache
def process_settings() -> Settings:
    """This process's settings, read from its environment once (a worker's jobs share them)."""
    return load_settings()


_per_loop: dict[int, Runtime] = {}


def for_this_loop(max_connections: int = 256) -> Runtime:
    """The runtime of the running event loop, made on first use from ``process_settings``."""
    loop = id(asyncio.get_running_loop())
    found = _per_loop.get(loop)
    if found is None:
        found = _per_loop[loop] = Runtime(process_settings(), max_connections=max_connections)
    return found
