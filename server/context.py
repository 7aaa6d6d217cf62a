"""What an operation runs with: the store, the caller, the process's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from shared.auth import Identity
from shared.config import Settings
from shared.store import Store
from shared.store.guard import Guard


@dataclass(slots=True)
class Services:
    """One per web process."""

    settings: Settings
    redis: aioredis.Redis
    store: Store
    secret: str
    dev_mode: bool
    generation: Any = None  # set once the generation pipeline is wired in
    live: Any = None  # server.live.LiveQueries, made at start-up
    listener: Any = None  # server.fanout.ChangeListener, made at start-up
    sessions: set[Any] = field(default_factory=set)  # open WebSocket sessions
    relay: Any = None  # server.stream_relay.StreamRelay
    limiter: Any = None  # shared.ratelimit.RateLimiter
    memory: Any = None  # shared.memory.search.MemorySearch
    reaper: Any = None  # server.reaper.StreamReaper


@dataclass(slots=True)
class Context:
    """One operation by one caller."""

    services: Services
    identity: Identity
    guard: Guard | None = None  # set while a mutation a client may resend runs

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def user_id(self) -> str:
        return self.identity.user_id
