"""What the index process is told: messages and snippets to embed, vectors to remove.

Ops go on a Redis list in the partition of their thread or namespace (keys.vector_ops), which
the index process drains in batches (workers.ops_queue). Each is an
``IndexOp`` encoded as a msgpack array ``[kind, ref]``:

- ``embed_message`` (ref: messageId), ``forget_message`` (messageId),
- ``forget_thread`` (threadId),
- ``embed_snippet`` (``threadId/snippetId``), ``forget_snippet`` (snippetId),
- ``embed_item``, ``forget_item`` (an item of the cross-thread store: ``item\x1f<namespace>\x1f<key>``),
- ``embed_document``, ``forget_document`` (a version of a RAG document: ``<namespace>\x1f<key>\x1f<version>``),
  ``reembed_document`` (the same ref: a version searchable already, from its stored chunks),
- ``forget_user`` (userId: every point of theirs, after their data was erased: shared.userdata.erasure).

The store's write scripts queue them in the same atomic step as the write,
through ``index_op`` of ``lua/index_op.lua`` (the same array, packed in Lua); this
module queues them again (re-embedding: `threadline reembed`). Embedding is
idempotent, so a repeated op costs only time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from threadline.shared import keys
from threadline.shared.records import Message
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client
from threadline.shared.storage.scripts import lua

RPC, ALIVE = keys.VECTOR_RPC, keys.VECTOR_ALIVE
OPS_TAKE = lua(__file__, "ops_take")
OPS_RETURN = lua(__file__, "ops_return")

Kind = Literal["embed_message", "forget_message", "forget_thread", "embed_snippet", "forget_snippet",
               "embed_document", "forget_document", "reembed_document", "embed_item", "forget_item", "forget_user"]


class IndexOp(msgspec.Struct, array_like=True, frozen=True):
    kind: Kind
    ref: str


encode_op = msgspec.msgpack.Encoder().encode
_decode_op = msgspec.msgpack.Decoder(IndexOp).decode



def decode_op(raw: bytes) -> IndexOp | None:
    """The op, or None for one this version cannot read (logged and dropped by the caller)."""
    try:
        return _decode_op(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def indexable(m: Message) -> bool:
    """Every successful non-tool message with text is embedded."""
    return m.status == "success" and not m.is_tool and bool(m.text.strip())


def index_flag(m: Message) -> str:
    """The write scripts' per-message flag: "1" queues the message for embedding."""
    return "1" if indexable(m) else "0"


async def waiting(redis: Client) -> int:
    """How many ops wait for the index process, over every partition."""
    return sum(await partitions.each(redis, keys.VECTOR_OPS, lambda pipe, key: pipe.llen(key)))


class MemoryOps:
    def __init__(self, redis: Client) -> None:
        self._redis = redis

    async def push(self, home: str, ops: Iterable[IndexOp]) -> None:
        """Queue ``ops`` of the thread or namespace ``home`` (in its partition)."""
        encoded = [encode_op(op) for op in ops]
        if encoded:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.rpush(keys.vector_ops(home), *encoded)
                pipe.execute_command("SPUBLISH", keys.vector_ops_wake(home), "1")
                await pipe.execute()

    async def saved(self, messages: Iterable[Message]) -> None:
        by_thread: dict[str, list[IndexOp]] = {}
        for m in messages:
            if indexable(m):
                by_thread.setdefault(m.thread_id, []).append(IndexOp("embed_message", m.message_id))
        for thread_id, ops in by_thread.items():
            await self.push(thread_id, ops)

    async def snippet_saved(self, thread_id: str, snippet_id: str) -> None:
        await self.push(thread_id, [IndexOp("embed_snippet", f"{thread_id}/{snippet_id}")])
