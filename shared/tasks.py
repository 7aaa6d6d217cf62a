"""Stopping a helper task for sure.

redis-py's asyncio client lets a command it has sent run to its end and may
swallow a cancellation that lands meanwhile (redis/redis-py#2028, #2666): the
task goes on as if nothing happened. A renewal loop cancelled once at that
moment would keep renewing forever and the ``await`` on it would never return
(a thread's lock held for good, a job that never ends). So cancel until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

AGAIN_S = 0.05


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` (again every AGAIN_S while it runs on) and wait for its end; what it raised
    on the way out is dropped."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=AGAIN_S)
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.result()
