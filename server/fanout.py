"""The one Redis pub/sub listener of a web process, and the router of what it hears.

It owns channel -> listeners: a live query refs the channels it depends on
(its change notices, and its thread's deltas if it carries streams) and hears
every message of them. It subscribes upstream to a channel when the first
listener refs it and unsubscribes when the last one goes. Channels are shard
channels (SSUBSCRIBE; the writers SPUBLISH), each in the hash slot of the keys
it announces, so the same code serves one node and a Redis Cluster; one
subscribe command names the channels of one slot only. Redis pub/sub is
at-most-once: after any reconnect every listener is told to resync (re-run),
since messages may have been lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.crc import key_slot

log = logging.getLogger(__name__)

BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
CONFIRM_TIMEOUT_S = 5.0


class Listener(Protocol):
    """What hears a channel (a live query)."""

    def heard(self, channel: str, data: bytes) -> None:
        """A message of a channel this listener refs."""

    def resync(self) -> None:
        """Messages may have been lost (the connection to Redis was lost): catch up."""


class ChangeListener:
    """Routes every message of a channel to the listeners that ref it."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._pubsub = redis.pubsub()
        self._routes: defaultdict[str, set[Listener]] = defaultdict(set)
        self._confirmed: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.reconnects = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    @property
    def channels(self) -> set[str]:
        return set(self._routes)

    async def ref(self, channels: list[str], who: Listener) -> None:
        """Route ``channels`` to ``who``; returns once Redis confirmed the subscription."""
        new = [ch for ch in channels if ch not in self._routes]
        for ch in channels:
            self._routes[ch].add(who)
        if new:
            for ch in new:
                self._confirmed.setdefault(ch, asyncio.Event())
            try:
                for group in by_slot(new):
                    await self._pubsub.ssubscribe(*group)
            except (rexc.ConnectionError, rexc.TimeoutError, OSError):
                # The listener reconnects and resubscribes (redis-py keeps the set).
                log.warning("subscribe failed; the listener will resubscribe")
            self._wake.set()
        waits = [self._confirmed[ch].wait() for ch in channels if ch in self._confirmed]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), CONFIRM_TIMEOUT_S)

    def unref(self, channels: list[str], who: Listener) -> None:
        """Stop routing ``channels`` to ``who``; the last listener of a channel unsubscribes upstream."""
        gone = []
        for ch in channels:
            group = self._routes.get(ch)
            if group is None:
                continue
            group.discard(who)
            if not group:
                del self._routes[ch]
                self._confirmed.pop(ch, None)
                gone.append(ch)
        if gone:
            asyncio.get_running_loop().create_task(self._unsubscribe(gone))

    async def _unsubscribe(self, channels: list[str]) -> None:
        still_gone = [ch for ch in channels if ch not in self._routes]
        if still_gone:
            with contextlib.suppress(Exception):
                for group in by_slot(still_gone):
                    await self._pubsub.sunsubscribe(*group)

    async def _listen(self) -> None:
        attempt = 0
        lost = False
        while True:
            try:
                if not self._pubsub.subscribed:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                msg = await self._pubsub.get_message(timeout=1.0)
                if lost:
                    lost, attempt = False, 0
                    self.reconnects += 1
                    log.info("change listener reconnected; re-running live queries")
                    self._resync()
                if msg is None:
                    continue
                self._handle(msg)
            except asyncio.CancelledError:
                raise
            except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                lost = True
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                attempt += 1
                log.warning("change listener lost Redis (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
            except Exception:
                log.exception("change listener error")
                await asyncio.sleep(0.1)

    def _resync(self) -> None:
        everyone = {who for group in self._routes.values() for who in group}
        for who in everyone:
            who.resync()

    def _handle(self, msg: dict[str, object]) -> None:
        kind = msg["type"]
        channel = msg["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "ssubscribe":
            event = self._confirmed.get(name)
            if event is not None:
                event.set()
        elif kind == "smessage":
            data = msg["data"]
            raw = data if isinstance(data, bytes) else str(data).encode()
            for who in list(self._routes.get(name, ())):
                try:
                    who.heard(name, raw)
                except Exception:  # one listener's fault must not starve the others
                    log.exception("a listener of %s failed", name)


def by_slot(channels: Iterable[str]) -> list[list[str]]:
    """``channels`` grouped by hash slot, in first-seen order (a cluster refuses a shard subscribe
    that spans slots)."""
    groups: dict[int, list[str]] = {}
    for ch in channels:
        groups.setdefault(key_slot(ch.encode()), []).append(ch)
    return list(groups.values())
