"""Live deltas from workers to subscribers, gapless per subscription.

Per process and per stream, an in-memory log holds every delta's encoded frame
tail (seq 1..n). Live deltas append to it in seq order; a delta that arrives
after a gap (pub/sub is at-most-once) first makes the log catch up from the
stream's Redis log. Each subscription keeps its own cursor per stream and is
sent exactly the deltas after it, so it never gets a seq twice or a gap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

import msgspec

from shared import keys
from shared.store import Store
from shared.store.streams import StreamInfo, thread_of_stream

if TYPE_CHECKING:
    from server.live import LiveQueries

log = logging.getLogger(__name__)


class _Head(msgspec.Struct):
    streamId: str
    seq: int


_decode_head = msgspec.json.Decoder(_Head).decode


class DeltaSubscriber(Protocol):
    def deliver_deltas(self, sub_id: str, stream_id: str, tails: list[str]) -> None: ...


class StreamLog:
    __slots__ = ("filling", "pending", "tails")

    def __init__(self) -> None:
        self.tails: list[str] = []
        self.pending: dict[int, str] = {}
        self.filling: asyncio.Task[None] | None = None


def tail(stream_id: str, seq: int, parts_json: bytes | str) -> str:
    parts = parts_json.decode() if isinstance(parts_json, bytes) else parts_json
    return f',"streamId":"{stream_id}","seq":{seq},"parts":{parts}}}'


class StreamRelay:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._threads: dict[str, dict[str, StreamLog]] = {}
        self.live: LiveQueries | None = None
        self.gap_fills = 0

    def on_delta(self, payload: bytes) -> None:
        """A live delta from pub/sub: ``{"streamId","seq","parts"}``."""
        try:
            head = _decode_head(payload)
            thread_id = thread_of_stream(head.streamId)
        except Exception:
            log.warning("ignoring a malformed delta %r", payload[:200])
            return
        logs = self._threads.get(thread_id)
        if logs is None:
            return  # nobody here watches this thread's streams
        slog = logs.setdefault(head.streamId, StreamLog())
        text = payload.decode()
        entry = "," + text[1:]  # '{"streamId":..}' -> ',"streamId":..}'
        if slog.filling is not None or head.seq > len(slog.tails) + 1:
            slog.pending[head.seq] = entry
            self._fill(thread_id, head.streamId, slog)
            return
        if head.seq == len(slog.tails) + 1:
            slog.tails.append(entry)
            self._fan(thread_id, head.streamId, slog)

    async def ensure(self, thread_id: str, streams: list[StreamInfo]) -> None:
        """Load each listed stream's log up to its seq (before a result naming it goes out)."""
        logs = self._threads.setdefault(thread_id, {})
        listed = {s.stream_id for s in streams}
        for gone in [sid for sid in logs if sid not in listed]:
            del logs[gone]
        for s in streams:
            slog = logs.setdefault(s.stream_id, StreamLog())
            if len(slog.tails) < s.seq:
                self._fill(thread_id, s.stream_id, slog)
            if slog.filling is not None:
                await asyncio.shield(slog.filling)

    def forget(self, thread_id: str) -> None:
        """No local query watches this thread's streams any more."""
        self._threads.pop(thread_id, None)

    def logs(self, thread_id: str) -> dict[str, StreamLog]:
        return self._threads.get(thread_id, {})

    def _fill(self, thread_id: str, stream_id: str, slog: StreamLog) -> None:
        if slog.filling is None:
            slog.filling = asyncio.create_task(self._fill_from_redis(thread_id, stream_id, slog))

    async def _fill_from_redis(self, thread_id: str, stream_id: str, slog: StreamLog) -> None:
        self.gap_fills += 1
        try:
            for seq, parts in await self._store.streams.log(thread_id, stream_id, after=len(slog.tails)):
                if seq == len(slog.tails) + 1:
                    slog.tails.append(tail(stream_id, seq, parts))
        except Exception:
            log.exception("could not replay stream %s", stream_id)
        finally:
            slog.filling = None
        while len(slog.tails) + 1 in slog.pending:
            slog.tails.append(slog.pending.pop(len(slog.tails) + 1))
        for seq in [s for s in slog.pending if s <= len(slog.tails)]:
            del slog.pending[seq]
        if slog.pending:  # still a gap: what Redis had did not reach the live ones yet
            self._fill(thread_id, stream_id, slog)
        self._fan(thread_id, stream_id, slog)

    def _fan(self, thread_id: str, stream_id: str, slog: StreamLog) -> None:
        if self.live is None:
            return
        for sq in self.live.affected([keys.delta_channel(thread_id)]):
            for who, ids in list(sq.subscribers.items()):
                for sub_id in list(ids):
                    who.deliver_deltas(sub_id, stream_id, slog.tails)  # type: ignore[attr-defined]
