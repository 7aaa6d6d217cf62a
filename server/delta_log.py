"""This process's copy of the deltas of the streams its subscriptions watch.

Per stream, an in-memory log holds every delta's parts (JSON text) for seq
1..n, in order and without gaps. Live deltas (pub/sub is at-most-once) append
in seq order; a delta that arrives after a gap first makes the log catch up
from the stream's Redis log. A thread's logs exist while something holds the
thread (a live query that carries its streams) and go with the last release.

The log knows nothing of subscriptions: the live query that hears a delta
adds it here and then sends each subscriber what lies after its cursor.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

from threadline.shared.streams.records import DeltaNotice, StreamInfo
from threadline.shared.threads import Store

log = logging.getLogger(__name__)

FILL_RETRY_S = 0.2  # after a failed catch-up from Redis


class StreamLog:
    __slots__ = ("filling", "parts", "pending")

    def __init__(self) -> None:
        self.parts: list[str] = []  # parts JSON of seq 1..len(parts)
        self.pending: dict[int, str] = {}  # live deltas heard after a gap, by seq
        self.filling: asyncio.Task[None] | None = None


class DeltaLog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._threads: dict[str, dict[str, StreamLog]] = {}
        self._holds: Counter[str] = Counter()
        self.gap_fills = 0

    def hold(self, thread_id: str) -> None:
        """Keep the thread's logs (a live query carrying its streams exists)."""
        self._holds[thread_id] += 1
        self._threads.setdefault(thread_id, {})

    def release(self, thread_id: str) -> None:
        self._holds[thread_id] -= 1
        if self._holds[thread_id] <= 0:
            del self._holds[thread_id]
            self._threads.pop(thread_id, None)

    def add(self, thread_id: str, notice: DeltaNotice) -> bool:
        """Take a live delta; True when the stream's log is complete up to it now (no gap to fill).

        Adding the same delta twice changes nothing, so every live query of the thread may add it.
        """
        logs = self._threads.get(thread_id)
        if logs is None:
            return False  # nobody here holds this thread
        slog = logs.setdefault(notice.stream_id, StreamLog())
        if notice.seq <= len(slog.parts):
            return slog.filling is None
        if slog.filling is not None or notice.seq > len(slog.parts) + 1:
            slog.pending[notice.seq] = notice.parts
            self._fill(thread_id, notice.stream_id, slog)
            return False
        slog.parts.append(notice.parts)
        return True

    async def caught_up(self, thread_id: str, stream_id: str) -> None:
        """Wait until no gap is being filled in the stream's log."""
        slog = self._threads.get(thread_id, {}).get(stream_id)
        while slog is not None and slog.filling is not None:
            await asyncio.shield(slog.filling)

    async def ensure(self, thread_id: str, streams: Sequence[StreamInfo]) -> None:
        """Load each listed stream's log up to its seq (before a result naming it goes out);
        forget the streams no longer listed."""
        logs = self._threads.get(thread_id)
        if logs is None:
            return
        listed = {s.stream_id for s in streams}
        for gone in [sid for sid in logs if sid not in listed]:
            del logs[gone]
        for s in streams:
            slog = logs.setdefault(s.stream_id, StreamLog())
            if len(slog.parts) < s.seq:
                self._fill(thread_id, s.stream_id, slog)
        for s in streams:
            await self.caught_up(thread_id, s.stream_id)

    def parts(self, thread_id: str, stream_id: str) -> list[str]:
        """The stream's deltas so far: entry i holds seq i + 1."""
        slog = self._threads.get(thread_id, {}).get(stream_id)
        return slog.parts if slog is not None else []

    def _fill(self, thread_id: str, stream_id: str, slog: StreamLog) -> None:
        if slog.filling is None:
            slog.filling = asyncio.create_task(self._fill_from_redis(thread_id, stream_id, slog))

    async def _fill_from_redis(self, thread_id: str, stream_id: str, slog: StreamLog) -> None:
        self.gap_fills += 1
        try:
            for seq, parts in await self._store.streams.log(thread_id, stream_id, after=len(slog.parts)):
                if seq == len(slog.parts) + 1:
                    slog.parts.append(parts.decode())
        except Exception:
            log.exception("could not replay stream %s", stream_id)
            await asyncio.sleep(FILL_RETRY_S)
        finally:
            slog.filling = None
        while len(slog.parts) + 1 in slog.pending:
            slog.parts.append(slog.pending.pop(len(slog.parts) + 1))
        for seq in [s for s in slog.pending if s <= len(slog.parts)]:
            del slog.pending[seq]
        held = self._threads.get(thread_id, {}).get(stream_id) is slog
        if slog.pending and held:  # still a gap: what Redis had did not reach the live ones yet
            self._fill(thread_id, stream_id, slog)
