"""The delta writer: the first token at once, then text cut at chunk boundaries on the timer,
everything at a step's end, the growing object of a structured reply, and an aborted stream noticed."""

from __future__ import annotations

import asyncio

import pytest

from threadline.shared.generation.deltas import DeltaWriter
from threadline.shared.records import ObjectPart, Part, TextPart, ToolCallPart

pytestmark = pytest.mark.anyio


class Kept:
    """A sink that keeps each delta (and can refuse like an aborted stream)."""

    def __init__(self, abort_after: int | None = None) -> None:
        self.deltas: list[list[Part]] = []
        self.abort_after = abort_after

    async def append(self, stream_id: str, parts: list[Part], *, closing: bool = False, after: int = 0) -> int:
        if self.abort_after is not None and len(self.deltas) >= self.abort_after and not closing:
            return 0
        self.deltas.append(parts)
        return len(self.deltas)


async def test_the_first_token_goes_at_once_then_whole_words_and_the_step_end_sends_the_rest() -> None:
    sink = Kept()
    writer = DeltaWriter(sink, "s", chunking="word", throttle_ms=10)
    writer.start()
    writer.text("Hel")  # the model's first token: shown at once, whole
    await asyncio.sleep(0.05)
    assert sink.deltas == [[TextPart(text="Hel")]]
    writer.text("lo wor")  # from now on, up to a word boundary per tick
    await asyncio.sleep(0.05)
    assert sink.deltas == [[TextPart(text="Hel")], [TextPart(text="lo ")]]
    writer.text("ld")
    writer.part(ToolCallPart(tool_call_id="c", tool_name="t", args={}))
    await writer.flush()
    await writer.close()
    assert "".join(p.text for d in sink.deltas for p in d if isinstance(p, TextPart)) == "Hello world"
    assert sink.deltas[-1][-1] == ToolCallPart(tool_call_id="c", tool_name="t", args={})
    assert writer.seq == len(sink.deltas)


async def test_a_structured_reply_streams_its_object_as_it_grows() -> None:
    sink = Kept()
    text = ""
    writer = DeltaWriter(sink, "s", throttle_ms=0, object_of=lambda: {"t": text} if text else None)
    for piece in ("a", "b"):
        text += piece
        writer.text(piece)
        await writer.flush()
    objects = [p.object for d in sink.deltas for p in d if isinstance(p, ObjectPart)]
    assert objects == [{"t": "a"}, {"t": "ab"}]


async def test_an_aborted_stream_is_noticed() -> None:
    sink = Kept(abort_after=1)
    writer = DeltaWriter(sink, "s", throttle_ms=0)
    writer.text("one ")
    await writer.flush()
    assert not writer.aborted.is_set()
    writer.text("two ")
    await writer.flush()
    assert writer.aborted.is_set()
    writer.text("three")  # still arriving when the abort is noticed
    await writer.flush(closing=True)  # the refused delta and the rest go out as the last one
    assert sink.deltas == [[TextPart(text="one ")], [TextPart(text="two three")]]
