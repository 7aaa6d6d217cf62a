"""The transport's queue and flag: asyncio's Queue and Event as uvicorn uses them, holding no list when idle."""

from __future__ import annotations

import asyncio

import pytest

from threadline.server.ws.transport import _Flag, _Queue

pytestmark = pytest.mark.anyio


async def test_a_queue_hands_items_in_order_to_whoever_waits() -> None:
    queue = _Queue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert queue._waiters is not None and not getter.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await getter == 1
    assert await queue.get() == 2
    assert queue.empty() and queue._waiters is None


async def test_a_flag_wakes_every_waiter_and_a_cancelled_wait_leaves_nothing() -> None:
    flag = _Flag()
    assert await flag.wait()  # set at first
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    gone = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag._waiters is None
