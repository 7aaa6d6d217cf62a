"""Waking a request that follows a thread (an SSE relay of a reply) as soon as the thread changes or
a delta comes, through the web process's change listener (the index process waits for queued ops
with a Wakeup too).

A relay used to block in XREAD on the stream's log for up to a second at a time: the end of a
reply (a status change, no new delta) did not wake it, so a stream could end up to a second late,
and each relay held a connection of the pool while it waited. Here a relay refs the thread's
change and delta channels and waits on an event, then reads the log without blocking.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from threadline.server.fanout import ChangeListener
from threadline.shared import keys

SAFETY_S = 1.0  # a wait ends by then even with no notice (a notice is at most once)


class Wakeup:
    """Set by any notice of the channels it refs, or by a resync (notices may have been lost)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.notices = 0  # notices heard

    def heard(self, channel: str, data: bytes) -> None:
        self.notices += 1
        self._event.set()

    def resync(self) -> None:
        self._event.set()

    def arm(self) -> None:
        """Before reading what the next wait is about: a notice from now on ends that wait."""
        self._event.clear()

    async def wait(self, timeout_s: float = SAFETY_S) -> bool:
        """Until a notice came since ``arm`` (at once if one did), or ``timeout_s``; whether one came."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


@contextlib.asynccontextmanager
async def thread_wakeup(listener: ChangeListener, thread_id: str) -> AsyncIterator[Wakeup]:
    """A Wakeup for the thread's change notices and deltas, while the block runs."""
    channels = [keys.thread_channel(thread_id), keys.delta_channel(thread_id)]
    woken = Wakeup()
    await listener.ref(channels, woken)
    try:
        yield woken
    finally:
        listener.unref(channels, woken)
