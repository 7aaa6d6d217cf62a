"""A renewal loop stops when asked, even when the cancellation lands while redis-py has a command in
flight (it lets the command finish and may swallow the cancellation)."""

from __future__ import annotations

import asyncio

import pytest

from threadline.shared.tasks import cancel_and_wait
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


async def test_a_renewal_loop_cancelled_mid_command_stops(store: Store) -> None:
    beats = 0

    async def renew() -> None:
        nonlocal beats
        while True:
            await store.redis.set("test:lease", b"1", px=1000)
            beats += 1
            await asyncio.sleep(0.01)

    for offset in range(6):  # cancel 0..5 loop turns after the start: some land inside the SET
        for _ in range(20):
            task = asyncio.create_task(renew())
            for _ in range(offset):
                await asyncio.sleep(0)
            await asyncio.wait_for(cancel_and_wait(task), 5)
            assert task.done()
            before = beats
            await asyncio.sleep(0.02)
            assert beats == before, "the loop went on after it was stopped"
