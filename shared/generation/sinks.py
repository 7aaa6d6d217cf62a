"""Where a generation keeps what it produces: the caller chooses.

``StoreSink``: the reply is saved in the thread as it goes (a pending message,
a stream of deltas every tab receives, tool results, the final message and the
end of the stream in one step), and the stream's heartbeat tells the
generation when it was aborted. The RQ job and the Python API with saved
messages use it.

``MemorySink``: nothing is written; the prompt and the reply live only in the
generation's result (saveMessages "none": the playground, the Python API).
The thread's stored messages still form the context.

``extra``: messages the caller adds to the context of this reply, before the
prompt, without saving them.

Both hand every delta to ``on_delta`` when the caller gives one (in-process streaming).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import msgspec

from threadline.shared.agents import ContextOptions
from threadline.shared.generation.context import fetch_context_messages, passages_for
from threadline.shared.generation.pulse import pulse_for
from threadline.shared.records import Message, Part, TextPart
from threadline.shared.score import after_order
from threadline.shared.streams.records import StreamStatus
from threadline.shared.threads import Store
from threadline.shared.vectors.search import MemorySearch

OnDelta = Callable[[list[Part]], None]
SUMMARIZED_THROUGH = "summarizedThroughOrder"  # thread metadata: the last order the summary covers
_encode = msgspec.json.Encoder().encode


UNTITLED = {"", "new chat", "untitled"}  # titles a page gives a thread it just made


def untitled(title: str) -> bool:
    return title.strip().casefold() in UNTITLED


class Sink(Protocol):
    thread_id: str
    store: Store
    memory: MemorySearch | None  # memory and document search, where reachable

    async def start(self, prompt: Message) -> None:
        """Before anything else (a stored thread fails its earlier pending replies to this prompt)."""

    async def new_reply(self, pending: Message, prompt: Message) -> Message:
        """Keep a new pending reply message; returns it as kept (with its id and order)."""

    async def open_stream(self, reply: Message, agent_name: str | None, prompt: Message) -> tuple[str, bool]:
        """Open the reply's stream: (its id, "" when nothing is streamed to the store; whether the
        reply was asked to stop before it started, so it must end at once)."""

    async def context(self, prompt: Message, options: ContextOptions, produced: list[Message]) -> list[Message]:
        """The messages the model sees before this step (``produced``: this generation's so far)."""

    async def summary(self) -> tuple[str, int]:
        """The thread's running summary and the order it covers (0: none)."""

    async def keep_summary(self, summary: str, through: int) -> None:
        """Remember a longer summary."""

    async def name_thread(self, title: str) -> bool:
        """Title the thread if it has none yet (it may have been named meanwhile); True if it did."""

    async def append(self, stream_id: str, parts: list[Part], *, closing: bool = False, after: int = 0) -> int:
        """One delta; its seq, or 0 when the stream was aborted (stop generating). ``closing``: an
        aborted generation's last delta (what it received before it stopped), taken all the same.
        ``after``: the seq of the delta before it (a retry never writes it twice)."""

    async def step_done(self, reply: Message) -> None:
        """A step's reply is complete (it called tools)."""

    async def tool_result(self, message: Message, prompt: Message) -> Message:
        """Keep a tool's result; returns it as kept."""

    async def finish(self, stream_id: str, messages: list[Message], status: StreamStatus) -> None:
        """End the stream together with its final message(s)."""

    async def orphan(self, stream_id: str) -> bool:
        """Hand the stream to the reaper (its worker stops); False when there is no such thing."""

    def watch(self, stream_id: str) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """An event set when the stream stops streaming (aborted, or ended elsewhere)."""


class _Sink:
    """What both sinks are made with (see the module docstring)."""

    def __init__(self, store: Store, thread_id: str, memory: MemorySearch | None = None,
                 extra: list[Message] | None = None, on_delta: OnDelta | None = None, job_id: str = "") -> None:
        """``job_id``: the generation job writing the reply (a queued job can be asked to stop)."""
        self.store = store
        self.job_id = job_id
        self.thread_id = thread_id
        self.memory = memory
        self._extra = extra or []
        self._on_delta = on_delta


class StoreSink(_Sink):
    """Saves the reply in the thread as it goes; see the module docstring."""

    async def start(self, prompt: Message) -> None:
        _, page = await self.store.messages.list(self.thread_id, None, num_items=100, cursor=after_order(prompt.order),
                                                 statuses=["pending"], min_order=prompt.order)  # its order only
        stale = [m for m in page.page if m.order == prompt.order and m.role == "assistant"]
        for m in stale:
            m.status, m.error = "failed", "superseded by a newer generation"
        if stale:
            await self.store.messages.replace(self.thread_id, stale)

    async def new_reply(self, pending: Message, prompt: Message) -> Message:
        _, (saved,) = await self.store.messages.save(self.thread_id, None, [pending],
                                                     prompt_message_id=prompt.message_id)
        return saved

    async def open_stream(self, reply: Message, agent_name: str | None, prompt: Message) -> tuple[str, bool]:
        return await self.store.streams.open(reply, agent_name=agent_name, prompt_message_id=prompt.message_id,
                                             job_id=self.job_id)

    async def context(self, prompt: Message, options: ContextOptions, produced: list[Message]) -> list[Message]:
        context = await fetch_context_messages(self.store, self.thread_id, prompt, options, self.memory)
        if not self._extra:
            return context
        at = next((i for i, m in enumerate(context) if m.message_id == prompt.message_id), len(context))
        return [*context[:at], *self._extra, *context[at:]]

    async def summary(self) -> tuple[str, int]:
        return await _stored_summary(self.store, self.thread_id)

    async def name_thread(self, title: str) -> bool:
        thread = await self.store.threads.get(self.thread_id)
        if not untitled(thread.title):
            return False
        await self.store.threads.update(self.thread_id, thread.user_id, title=title)
        return True

    async def keep_summary(self, summary: str, through: int) -> None:
        thread = await self.store.threads.get(self.thread_id)
        await self.store.threads.update(self.thread_id, thread.user_id, summary=summary,
                                        metadata={**thread.metadata, SUMMARIZED_THROUGH: through})

    async def append(self, stream_id: str, parts: list[Part], *, closing: bool = False, after: int = 0) -> int:
        if self._on_delta is not None:
            self._on_delta(parts)
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        return await self.store.streams.append(self.thread_id, stream_id, _encode(parts), text, closing=closing,
                                               after=after)

    async def step_done(self, reply: Message) -> None:
        await self.store.messages.replace(self.thread_id, [reply])

    async def tool_result(self, message: Message, prompt: Message) -> Message:
        _, (saved,) = await self.store.messages.save(self.thread_id, None, [message],
                                                     prompt_message_id=prompt.message_id)
        return saved

    async def finish(self, stream_id: str, messages: list[Message], status: StreamStatus) -> None:
        await self.store.streams.finish(self.thread_id, stream_id, messages, status=status)

    async def orphan(self, stream_id: str) -> bool:
        await self.store.streams.orphan(self.thread_id, stream_id)
        return True

    @contextlib.asynccontextmanager
    async def watch(self, stream_id: str) -> AsyncIterator[asyncio.Event]:
        """Heartbeats the stream (with every other stream of this process, in one round trip
        per beat) until it is no longer ``streaming``."""
        pulse = pulse_for(self.store.redis)
        try:
            yield pulse.watch(self.thread_id, stream_id)
        finally:
            pulse.unwatch(self.thread_id, stream_id)


class MemorySink(_Sink):
    """Writes nothing: the reply lives in the result; see the module docstring."""

    _seq = 0  # deltas handed on (each instance counts its own)

    async def start(self, prompt: Message) -> None:
        return None

    async def new_reply(self, pending: Message, prompt: Message) -> Message:
        return pending

    async def open_stream(self, reply: Message, agent_name: str | None, prompt: Message) -> tuple[str, bool]:
        return "", False

    async def context(self, prompt: Message, options: ContextOptions, produced: list[Message]) -> list[Message]:
        stored = await fetch_context_messages(self.store, self.thread_id, _AFTER_ALL, options) \
            if self.thread_id else []
        passages = await passages_for(self.store, self.memory, prompt, options)
        return [*stored, *passages, *self._extra, prompt, *produced]

    async def summary(self) -> tuple[str, int]:
        return await _stored_summary(self.store, self.thread_id) if self.thread_id else ("", 0)

    async def keep_summary(self, summary: str, through: int) -> None:
        return None  # an unsaved generation changes nothing in the thread

    async def name_thread(self, title: str) -> bool:
        return False

    async def append(self, stream_id: str, parts: list[Part], *, closing: bool = False, after: int = 0) -> int:
        if self._on_delta is not None:
            self._on_delta(parts)
        self._seq += 1
        return self._seq

    async def step_done(self, reply: Message) -> None:
        return None

    async def tool_result(self, message: Message, prompt: Message) -> Message:
        return message

    async def finish(self, stream_id: str, messages: list[Message], status: StreamStatus) -> None:
        return None

    async def orphan(self, stream_id: str) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def watch(self, stream_id: str) -> AsyncIterator[asyncio.Event]:
        yield asyncio.Event()  # nobody can abort what is not stored


async def _stored_summary(store: Store, thread_id: str) -> tuple[str, int]:
    thread = await store.threads.get(thread_id)
    return thread.summary, int(thread.metadata.get(SUMMARIZED_THROUGH, 0) or 0)


_AFTER_ALL = Message(message_id="", thread_id="", order=1 << 32)  # bounds context: every stored message
