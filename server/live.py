"""Live queries: one computed value per distinct subscription per process.

A SharedQuery is (query name, caller, the caller's access claims, args). Every local subscription with the
same key shares it. It listens (server.fanout routes to it) on the channels its
query depends on: a change notice re-runs it once (coalesced: notices that
arrive during a run cause exactly one more run), the result is encoded once,
and each subscriber gets it only when its last sent version is older. A query
whose result carries streams also listens on its thread's delta channel: each
delta goes into the process's delta log (server.delta_log), then to the
subscribers. Results and deltas reach a subscriber through the same loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from threadline.server.context import Context
from threadline.server.delta_log import DeltaLog
from threadline.server.fanout import ChangeListener
from threadline.server.queries import Query, StreamedPage
from threadline.shared import keys, metrics
from threadline.shared.errors import ChatError, Internal
from threadline.shared.patches import Change
from threadline.shared.streams.records import decode_notice

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
# Only an unreachable store is worth waiting for; anything else ends the subscription at once.
RETRY_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # then the subscription fails with `unavailable`


class Subscriber(Protocol):
    """What a shared query delivers to (a WebSocket session)."""

    def deliver_result(self, sub_id: str, version: int, value: str, streams: dict[str, int],
                       change: Change | None = None) -> None:
        """A new result; ``streams`` maps each stream it carries to the seq its text is as of;
        ``change`` is the step from the previous result to it, for subscribers that take patches."""

    def deliver_deltas(self, sub_id: str, stream_id: str, parts: list[str]) -> None:
        """The stream's deltas so far (``parts[i]`` is seq i + 1): send those after the cursor."""

    def deliver_error(self, sub_id: str, error: ChatError) -> None:
        """The subscription failed and is gone."""


# (query, user, the claims that decide access, args): tabs of one user whose tokens grant different
# access never share a result, so each subscriber's own claims authorize what it receives.
Key = tuple[str, str, bool, tuple[str, ...], bytes]


def share_key(query: Query, ctx: Context, args: Any) -> Key:
    """What identical subscriptions have in common: the query, the caller and their access, the args."""
    who = ctx.identity
    return (query.name, who.user_id, who.admin, tuple(sorted(set(who.teams))), _encode(args))


class SharedQuery:
    """One live query of this process and its local subscribers; see the module docstring."""

    __slots__ = (
        "args", "channels", "ctx", "delta_channel", "dirty", "failed", "key", "noticed", "query",
        "ready", "registry", "stream_seqs", "subscribers", "task", "thread", "value", "version",
    )

    def __init__(self, registry: LiveQueries, key: Key, query: Query, ctx: Context, args: Any) -> None:
        self.registry = registry
        self.key = key
        self.query = query
        self.ctx = ctx
        self.args = args
        self.thread = query.follows(args)  # whose streams the result carries, if any
        self.delta_channel = keys.delta_channel(self.thread) if self.thread is not None else None
        self.channels = query.channels(ctx, args) + ([self.delta_channel] if self.delta_channel else [])
        self.version = -1
        self.value: str | None = None
        self.subscribers: dict[Subscriber, set[str]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None
        self.dirty = False
        self.ready = asyncio.Event()
        self.failed: ChatError | None = None
        self.stream_seqs: dict[str, int] = {}  # seq of each stream as of ``value``
        self.noticed = 0.0  # when the oldest change not yet sent was heard

    # -- what the change listener routes here ---------------------------------------

    def heard(self, channel: str, data: bytes) -> None:
        if channel == self.delta_channel:
            self._heard_delta(data)
            return
        try:
            version: int | None = int(data)
        except ValueError:
            version = None
        if version is None or version > self.version:
            self.registry.schedule(self)

    def resync(self) -> None:
        self.registry.schedule(self)

    def _heard_delta(self, data: bytes) -> None:
        assert self.thread is not None
        try:
            notice = decode_notice(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("ignoring a malformed delta notice %r", data[:200])
            return
        deltas = self.registry.deltas
        if deltas.add(self.thread, notice):
            self.send_deltas(notice.stream_id)
        else:  # a gap is being filled from Redis: the deltas go out once it is
            asyncio.get_running_loop().create_task(self._send_when_caught_up(notice.stream_id))

    async def _send_when_caught_up(self, stream_id: str) -> None:
        assert self.thread is not None
        await self.registry.deltas.caught_up(self.thread, stream_id)
        self.send_deltas(stream_id)

    # -- delivery -------------------------------------------------------------------

    def _each(self, send: Callable[[Subscriber, str], None]) -> None:
        """The one loop over this query's subscribers."""
        for who, ids in list(self.subscribers.items()):
            for sub_id in list(ids):
                send(who, sub_id)

    def send_result_to(self, who: Subscriber, sub_id: str, change: Change | None = None) -> None:
        """The current result, then the deltas of its streams after it."""
        assert self.value is not None
        who.deliver_result(sub_id, self.version, self.value, self.stream_seqs, change)
        if self.thread is None:
            return
        for stream_id in self.stream_seqs:
            parts = self.registry.deltas.parts(self.thread, stream_id)
            if parts:
                who.deliver_deltas(sub_id, stream_id, parts)

    def send_result(self, change: Change | None) -> None:
        self._each(lambda who, sub_id: self.send_result_to(who, sub_id, change))

    def send_deltas(self, stream_id: str) -> None:
        if self.thread is None:
            return
        parts = self.registry.deltas.parts(self.thread, stream_id)
        if parts:
            self._each(lambda who, sub_id: who.deliver_deltas(sub_id, stream_id, parts))

    def send_error(self, exc: ChatError) -> None:
        self._each(lambda who, sub_id: who.deliver_error(sub_id, exc))


class LiveQueries:
    """The registry of shared queries of this process."""

    def __init__(self, listener: ChangeListener, deltas: DeltaLog) -> None:
        self._listener = listener
        self.deltas = deltas
        self._by_key: dict[Key, SharedQuery] = {}
        self.runs = 0  # query executions, for tests and metrics

    def __len__(self) -> int:
        return len(self._by_key)

    async def subscribe(self, ctx: Context, query: Query, args: Any, who: Subscriber, sub_id: str) -> SharedQuery:
        """Attach a subscriber and send it the current value; raises the query's error."""
        key = share_key(query, ctx, args)
        sq = self._by_key.get(key)
        if sq is None:
            sq = self._by_key[key] = SharedQuery(self, key, query, ctx, args)
            if sq.thread is not None:
                self.deltas.hold(sq.thread)
            sq.subscribers[who].add(sub_id)
            try:
                await self._listener.ref(sq.channels, sq)
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
        sq.send_result_to(who, sub_id)
        return sq

    def unsubscribe(self, sq: SharedQuery, who: Subscriber, sub_id: str) -> None:
        ids = sq.subscribers.get(who)
        if ids is not None:
            ids.discard(sub_id)
            if not ids:
                del sq.subscribers[who]
        if not sq.subscribers and self._by_key.get(sq.key) is sq:
            self._drop(sq)

    async def refresh(self, sq: SharedQuery) -> None:
        """Re-run now and wait until subscribers have been sent the result (read your writes)."""
        self.schedule(sq)
        if sq.task is not None:
            await asyncio.shield(sq.task)

    def affected(self, channels: list[str], among: set[SharedQuery]) -> set[SharedQuery]:
        """Which of ``among`` depend on any of ``channels``."""
        wanted = set(channels)
        return {sq for sq in among if not wanted.isdisjoint(sq.channels)}

    def schedule(self, sq: SharedQuery) -> None:
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
                change = await self._run(sq)
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
            sq.send_result(change)
            if sq.noticed:
                metrics.fanout_seconds.observe(time.perf_counter() - sq.noticed)
                sq.noticed = 0.0

    async def _run(self, sq: SharedQuery) -> Change | None:
        """Run the query; the step from the previous value when the value changed."""
        self.runs += 1
        metrics.query_runs.inc()
        with metrics.query_seconds.time():
            version, value = await sq.query.run(sq.ctx, sq.args)
        if version < sq.version:
            return None  # an older read finishing late: versions never go back
        streams = value.streams if sq.thread is not None and isinstance(value, StreamedPage) else None
        if streams is not None:
            assert sq.thread is not None
            # the deltas up to each listed seq must be at hand before the result goes out
            await self.deltas.ensure(sq.thread, streams)
        if version < sq.version:
            return None
        sq.version = version
        encoded = _encode(value).decode()
        if encoded == sq.value:
            return None
        # the previous value lives on only in the change, for as long as it is being sent
        change = Change(sq.value, encoded) if sq.value is not None else None
        sq.value = encoded
        sq.stream_seqs = {s.stream_id: s.seq for s in streams} if streams is not None else {}
        return change

    def _fail(self, sq: SharedQuery, exc: ChatError) -> None:
        sq.failed = exc
        sq.send_error(exc)
        self._drop(sq)

    def _drop(self, sq: SharedQuery) -> None:
        if self._by_key.get(sq.key) is sq:
            del self._by_key[sq.key]
            self._listener.unref(sq.channels, sq)
            if sq.thread is not None:
                self.deltas.release(sq.thread)
        if sq.task is not None and sq.task is not asyncio.current_task():
            sq.task.cancel()
