"""Live queries: one computed value per distinct subscription per process.

A SharedQuery is (query name, caller, args). Every local subscription with the
same key shares it: a change notice re-runs it once (coalesced: notices that
arrive during a run cause exactly one more run), the result is encoded once,
and each subscriber gets it only when its last sent version is older.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any, Protocol

import msgspec

from server.context import Context
from server.queries import Query
from server.stream_relay import StreamRelay
from shared import keys, metrics
from shared.errors import ChatError, Internal

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
# Only an unreachable store is worth waiting for; anything else ends the subscription at once.
RETRY_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # then the subscription fails with `unavailable`


class Subscriber(Protocol):
    """What a shared query delivers to (a WebSocket session)."""

    def deliver_result(self, sub_id: str, version: int, value: str, streams: dict[str, int]) -> None: ...

    def deliver_deltas(self, sub_id: str, stream_id: str, tails: list[str]) -> None: ...

    def deliver_error(self, sub_id: str, error: ChatError) -> None: ...


class Upstream(Protocol):
    """The process's change listener (see server.fanout)."""

    async def ref(self, channels: list[str]) -> None: ...

    def unref(self, channels: list[str]) -> None: ...


Key = tuple[str, str, bytes]


class SharedQuery:
    __slots__ = (
        "args",
        "channels",
        "ctx",
        "dirty",
        "failed",
        "key",
        "noticed",
        "query",
        "ready",
        "stream_seqs",
        "subscribers",
        "task",
        "value",
        "version",
    )

    def __init__(self, key: Key, query: Query, ctx: Context, args: Any, channels: list[str]) -> None:
        self.key = key
        self.query = query
        self.ctx = ctx
        self.args = args
        self.channels = channels
        self.version = -1
        self.value: str | None = None
        self.subscribers: dict[Subscriber, set[str]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None
        self.dirty = False
        self.ready = asyncio.Event()
        self.failed: ChatError | None = None
        self.stream_seqs: dict[str, int] = {}  # seq of each stream as of ``value``
        self.noticed = 0.0  # when the oldest change not yet sent was heard


class LiveQueries:
    """The registry of shared queries of this process."""

    def __init__(self, upstream: Upstream, relay: StreamRelay | None = None) -> None:
        self._upstream = upstream
        self._relay = relay
        if relay is not None:
            relay.live = self
        self._by_key: dict[Key, SharedQuery] = {}
        self._by_channel: dict[str, set[SharedQuery]] = defaultdict(set)
        self.runs = 0  # query executions, for tests and metrics

    def __len__(self) -> int:
        return len(self._by_key)

    async def subscribe(self, ctx: Context, query: Query, args: Any, who: Subscriber, sub_id: str) -> SharedQuery:
        """Attach a subscriber and send it the current value; raises the query's error."""
        key = (query.name, ctx.user_id, _encode(args))
        sq = self._by_key.get(key)
        if sq is None:
            sq = SharedQuery(key, query, ctx, args, query.channels(ctx, args))
            self._by_key[key] = sq
            for ch in sq.channels:
                self._by_channel[ch].add(sq)
            sq.subscribers[who].add(sub_id)
            try:
                await self._upstream.ref(sq.channels)
                await self._run(sq)
            except ChatError as exc:
                sq.failed = exc
                raise
            except Exception as exc:
                log.exception("query %s failed", query.name)
                sq.failed = Internal("query failed")
                raise sq.failed from exc
            except BaseException:
                sq.failed = Internal("subscription cancelled")
                raise
            finally:
                if sq.failed is not None:
                    self._drop(sq)
                sq.ready.set()
        else:
            sq.subscribers[who].add(sub_id)
            try:
                await sq.ready.wait()
            except BaseException:
                self.unsubscribe(sq, who, sub_id)
                raise
            if sq.failed is not None:
                raise sq.failed
        assert sq.value is not None
        who.deliver_result(sub_id, sq.version, sq.value, sq.stream_seqs)
        return sq

    def unsubscribe(self, sq: SharedQuery, who: Subscriber, sub_id: str) -> None:
        ids = sq.subscribers.get(who)
        if ids is not None:
            ids.discard(sub_id)
            if not ids:
                del sq.subscribers[who]
        if not sq.subscribers and self._by_key.get(sq.key) is sq:
            self._drop(sq)

    def on_message(self, channel: str, data: bytes) -> None:
        """What the change listener hears: deltas go to the relay, notices re-run queries."""
        if channel.startswith(keys.DELTA_CHANNEL_PREFIX):
            if self._relay is not None:
                self._relay.on_delta(data)
            return
        try:
            version: int | None = int(data)
        except ValueError:
            version = None
        self.notify(channel, version)

    def notify(self, channel: str, version: int | None) -> None:
        """A change notice from Redis: re-run (coalesced) what depends on ``channel``."""
        for sq in list(self._by_channel.get(channel, ())):
            if version is None or version > sq.version:
                self._schedule(sq)

    def refresh_all(self) -> None:
        """Re-run everything (after the listener reconnected: notices may be lost)."""
        for sq in list(self._by_key.values()):
            self._schedule(sq)

    async def refresh(self, sq: SharedQuery) -> None:
        """Re-run now and wait until subscribers have been sent the result (read your writes)."""
        self._schedule(sq)
        if sq.task is not None:
            await asyncio.shield(sq.task)

    def relay_logs(self, sq: SharedQuery) -> dict[str, Any]:
        """The relay's stream logs for the thread of ``sq`` (empty without streams)."""
        if self._relay is None or not getattr(sq.args, "streams", False):
            return {}
        return self._relay.logs(sq.args.thread_id)

    def affected(self, channels: list[str]) -> set[SharedQuery]:
        out: set[SharedQuery] = set()
        for ch in channels:
            out |= self._by_channel.get(ch, set())
        return out

    def _schedule(self, sq: SharedQuery) -> None:
        if self._by_key.get(sq.key) is not sq:
            return
        if not sq.dirty and not sq.noticed:
            sq.noticed = time.perf_counter()
        sq.dirty = True
        if sq.task is None or sq.task.done():
            sq.task = asyncio.create_task(self._refresh_loop(sq))

    async def _refresh_loop(self, sq: SharedQuery) -> None:
        attempt = 0
        while sq.dirty:
            sq.dirty = False
            try:
                await self._run(sq)
                attempt = 0
            except ChatError as exc:
                if exc.code == "unavailable" and attempt < len(RETRY_S):
                    await asyncio.sleep(RETRY_S[attempt])
                    attempt += 1
                    sq.dirty = True
                    continue
                self._fail(sq, exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live query %s failed", sq.query.name)
                self._fail(sq, Internal("query failed"))
                return
            self._broadcast(sq)
            if sq.noticed:
                metrics.fanout_seconds.observe(time.perf_counter() - sq.noticed)
                sq.noticed = 0.0

    async def _run(self, sq: SharedQuery) -> None:
        self.runs += 1
        metrics.query_runs.inc()
        with metrics.query_seconds.time():
            version, value = await sq.query.run(sq.ctx, sq.args)
        if version < sq.version:
            return  # an older read finishing late: versions never go back
        streams = value.get("streams") if isinstance(value, dict) else None
        if streams is not None and self._relay is not None:
            # the deltas up to each listed seq must be at hand before the result goes out
            await self._relay.ensure(sq.args.thread_id, streams)
        if version < sq.version:
            return
        sq.version = version
        encoded = _encode(value).decode()
        if encoded != sq.value:
            sq.value = encoded
            sq.stream_seqs = {s.stream_id: s.seq for s in streams} if streams is not None else {}

    def _broadcast(self, sq: SharedQuery) -> None:
        assert sq.value is not None
        for who, ids in list(sq.subscribers.items()):
            for sub_id in list(ids):
                who.deliver_result(sub_id, sq.version, sq.value, sq.stream_seqs)

    def _fail(self, sq: SharedQuery, exc: ChatError) -> None:
        sq.failed = exc
        subscribers = list(sq.subscribers.items())
        self._drop(sq)
        for who, ids in subscribers:
            for sub_id in ids:
                who.deliver_error(sub_id, exc)

    def _drop(self, sq: SharedQuery) -> None:
        if self._by_key.get(sq.key) is sq:
            del self._by_key[sq.key]
            for ch in sq.channels:
                group = self._by_channel.get(ch)
                if group is not None:
                    group.discard(sq)
                    if not group:
                        del self._by_channel[ch]
                        if self._relay is not None and ch.startswith(keys.DELTA_CHANNEL_PREFIX):
                            self._relay.forget(sq.args.thread_id)
            self._upstream.unref(sq.channels)
        if sq.task is not None and sq.task is not asyncio.current_task():
            sq.task.cancel()

