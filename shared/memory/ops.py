"""What the index process is told: messages to embed, vectors to remove.

Ops go on one Redis list the index process drains in batches:
``u:<messageId>`` embed a message, ``d:<messageId>`` forget one, ``t:<threadId>``
forget a thread, ``s:<threadId>/<snippetId>`` embed a snippet, ``x:<snippetId>``
forget a snippet. The store's write scripts queue them in the same atomic step
as the write; this module queues them again (re-embedding, a missed prompt).
Embedding is idempotent, so a repeated op costs only time.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from shared import keys
from shared.records import Message

OPS, RPC, ALIVE = keys.VECTOR_OPS, keys.VECTOR_RPC, keys.VECTOR_ALIVE


def indexable(m: Message) -> bool:
    """Every successful non-tool message with text is embedded."""
    return m.status == "success" and not m.is_tool and bool(m.text.strip())


def index_flag(m: Message) -> str:
    """The write scripts' per-message flag: "1" queues the message for embedding."""
    return "1" if indexable(m) else "0"


class MemoryOps:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def _push(self, ops: list[str]) -> None:
        if ops:
            await self._redis.rpush(OPS, *ops)

    async def saved(self, messages: Iterable[Message]) -> None:
        await self._push([f"u:{m.message_id}" for m in messages if indexable(m)])

    async def snippet_saved(self, thread_id: str, snippet_id: str) -> None:
        await self._push([f"s:{thread_id}/{snippet_id}"])
