"""Where a delta gets written: buffered parts flushed on a timer and at every step end.

Text is cut at chunk boundaries (word / line / regex) and flushed at most every
``throttle_ms``; the end of a step flushes everything, so no tail is ever lost.
The first delta goes out as soon as the model's first token is here, whole (a
tab shows the reply starting at the model's pace, not a chunk and a throttle
tick later); chunking and the throttle apply from the second on.
Each flush hands one delta to the generation's sink (shared.generation.sinks),
which appends it (next seq) to the stream's log and publishes it, or keeps it in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from threadline.shared.chunking import Chunker
from threadline.shared.records import ObjectPart, Part, ReasoningPart, TextPart
from threadline.shared.tasks import cancel_and_wait


class DeltaSink(Protocol):
    async def append(self, stream_id: str, parts: list[Part], *, closing: bool = False, after: int = 0) -> int: ...


class DeltaWriter:
    def __init__(
        self,
        sink: DeltaSink,
        stream_id: str,
        *,
        chunking: str = "word",
        throttle_ms: int = 100,
        object_of: Callable[[], Any] | None = None,
    ) -> None:
        self._sink = sink
        self.stream_id = stream_id
        self._chunker = Chunker(chunking)
        self._throttle = max(0.0, throttle_ms / 1000)
        self._object_of = object_of
        self._last_object: Any = None
        self._pending: list[Part] = []
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()  # something is buffered
        self._timer: asyncio.Task[None] | None = None
        self.seq = 0
        self._started = False  # a delta went out: chunk boundaries apply from now on
        self.aborted = asyncio.Event()

    def start(self) -> None:
        self._timer = asyncio.create_task(self._tick(), name="delta-timer")

    async def close(self) -> None:
        if self._timer is not None:
            await cancel_and_wait(self._timer)  # (its flush's Redis calls may swallow one cancel)

    def text(self, text: str) -> None:
        self._add(TextPart, text)

    def reasoning(self, text: str) -> None:
        self._add(ReasoningPart, text)

    def part(self, part: Part) -> None:
        self._pending.append(part)
        self._ready.set()

    def _add(self, kind: type[TextPart] | type[ReasoningPart], text: str) -> None:
        if self._pending and type(self._pending[-1]) is kind:
            self._pending[-1].text += text
        else:
            self._pending.append(kind(text=text))
        self._ready.set()

    async def _tick(self) -> None:
        """Flush as soon as something is buffered, then at most once per throttle interval."""
        while True:
            await self._ready.wait()
            await self.flush(final=False)
            if not self._pending:
                self._ready.clear()
            await asyncio.sleep(self._throttle)

    async def flush(self, *, final: bool = True, closing: bool = False) -> None:
        """Write what is buffered as one delta (on a timer: text only up to a chunk boundary).
        ``closing``: the generation was aborted and ends now; what it received still goes out, so
        the deltas joined are the text it stores. A delta the abort refused stays buffered for it."""
        async with self._lock:
            parts: list[Part] = self._pending
            keep: list[Part] = []
            if not final and self._started and parts and isinstance(parts[-1], TextPart):
                now, rest = self._chunker.split(parts[-1].text)
                parts = [*parts[:-1], *([TextPart(text=now)] if now else [])]
                keep = [TextPart(text=rest)] if rest else []
            if self._object_of is not None:
                obj = self._object_of()
                if obj is not None and obj != self._last_object:
                    self._last_object = obj
                    parts = [*parts, ObjectPart(object=obj)]
            self._pending = keep
            if not parts:
                return
            seq = await self._sink.append(self.stream_id, parts, closing=closing, after=self.seq)
            if seq == 0:
                self.aborted.set()
                refused: list[Part] = [p for p in parts if not isinstance(p, ObjectPart)]
                self._pending = refused + self._pending
                self._last_object = None
            else:
                self.seq = seq
                self._started = True
