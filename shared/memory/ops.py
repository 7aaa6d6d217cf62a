"""What the stores tell the index process: messages to embed, vectors to remove.

Ops go on one Redis list the index process drains in batches:
``u:<messageId>`` embed a message, ``d:<messageId>`` forget one, ``t:<threadId>``
forget a thread, ``s:<threadId>/<snippetId>`` embed a snippet, ``x:<snippetId>``
forget a snippet. Embedding is idempotent, so a repeated op costs only time.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from shared import keys
from shared.records import Message

OPS = f"{keys.PREFIX}:vec:ops"
RPC = f"{keys.PREFIX}:vec:rpc"
ALIVE = f"{keys.PREFIX}:vec:alive"  # kept fresh by a running index process


def indexable(m: Message) -> bool:
    """Every successful non-tool message with text is embedded."""
    return m.status == "success" and not m.is_tool and bool(m.text.strip())


class MemoryOps:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def _push(self, ops: list[str]) -> None:
        if ops:
            await self._redis.rpush(OPS, *ops)

    async def saved(self, messages: Iterable[Message]) -> None:
        await self._push([f"u:{m.message_id}" for m in messages if indexable(m)])

    async def deleted(self, message_ids: Iterable[str]) -> None:
        await self._push([f"d:{mid}" for mid in message_ids])

    async def thread_deleted(self, thread_id: str) -> None:
        await self._push([f"t:{thread_id}"])

    async def snippet_saved(self, thread_id: str, snippet_id: str) -> None:
        await self._push([f"s:{thread_id}/{snippet_id}"])

    async def snippet_deleted(self, snippet_ids: Iterable[str]) -> None:
        await self._push([f"x:{sid}" for sid in snippet_ids])
