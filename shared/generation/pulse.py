"""One heartbeat round trip per process for every reply it is generating.

A worker running hundreds of replies at once would otherwise send hundreds of
heartbeats every half second (each stream's liveness and status, each job's
"alive" key). The pulse sends them all in one pipeline per beat, and tells each
reply when its stream stopped being ``streaming`` (aborted from a tab, or
ended by the reaper).
"""

from __future__ import annotations

import asyncio
import logging
import weakref

import redis.exceptions as rexc

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.storage.client import Client
from threadline.shared.streams.store import member

log = logging.getLogger(__name__)

BEAT_S = 0.5


class Pulse:
    """Heartbeats for the streams and jobs of one process (on one event loop)."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis
        self._streams: dict[tuple[str, str], asyncio.Event] = {}
        self._alive: dict[str, int] = {}  # key -> px
        self._task: asyncio.Task[None] | None = None

    def watch(self, thread_id: str, stream_id: str) -> asyncio.Event:
        """Keep the stream alive; the event is set once its status is no longer ``streaming``."""
        event = self._streams.setdefault((thread_id, stream_id), asyncio.Event())
        self._start()
        return event

    def unwatch(self, thread_id: str, stream_id: str) -> None:
        self._streams.pop((thread_id, stream_id), None)

    def keep(self, key: str, px: int) -> None:
        """Keep ``key`` set (to 1) with a TTL of ``px`` ms, renewed every beat."""
        self._alive[key] = px
        self._start()

    def drop(self, key: str) -> None:
        self._alive.pop(key, None)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pulse")

    async def _run(self) -> None:
        while self._streams or self._alive:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except (rexc.RedisError, OSError) as exc:
                log.warning("heartbeat round failed: %s", exc)
            await asyncio.sleep(BEAT_S)

    async def beat(self) -> None:
        streams = list(self._streams.items())
        alive = list(self._alive.items())
        now = now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for (thread_id, stream_id), _ in streams:
                pipe.zadd(keys.active_streams(thread_id), {member(thread_id, stream_id): now}, xx=True)
                pipe.hget(keys.stream(thread_id, stream_id), "status")
            for key, px in alive:
                pipe.set(key, b"1", px=px)
            results = await pipe.execute()
        for i, (_, event) in enumerate(streams):
            status = results[2 * i + 1]
            if status != b"streaming":
                event.set()


_pulses: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Pulse]] = weakref.WeakKeyDictionary()


def pulse_for(redis: Client) -> Pulse:
    """The pulse of this Redis client on the running loop."""
    loop = asyncio.get_running_loop()
    by_client = _pulses.setdefault(loop, {})
    pulse = by_client.get(id(redis))
    if pulse is None or pulse._redis is not redis:
        pulse = by_client[id(redis)] = Pulse(redis)
    return pulse

