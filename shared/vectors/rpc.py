"""The memory-search contract: what a process asks and what it gets back.

The same types serve both ways of searching: in-process against a Qdrant
server, and over Redis to the index process (embedded mode), where a call is
``SearchCall`` on the RPC list and the answer ``SearchAnswer`` on the call's
reply list, both msgpack.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

DocKind = Literal["message", "snippet", "chunk", "item"]


class SearchRequest(msgspec.Struct, kw_only=True, frozen=True, tag="messages"):
    """Messages and snippets of one user for an agent's context."""

    user_id: str
    thread_id: str
    text: str
    before_order: int | None = None  # only messages before this order (of the current thread)
    other_threads: bool = False  # the user's other threads too
    limit: int = 10
    text_search: bool = True  # the sparse (keyword) half of the hybrid search
    vector_search: bool = True  # the dense half
    threshold: float | None = None  # minimum dense score
    kinds: tuple[DocKind, ...] = ("message",)


Scalar = str | int | bool


class ChunkSearchRequest(msgspec.Struct, kw_only=True, frozen=True, tag="chunks"):
    """Chunks of documents in some namespaces (document RAG), optionally by metadata; or, with
    ``kind="item"``, items of the cross-thread store in them (shared.items)."""

    namespaces: tuple[str, ...]
    text: str
    limit: int = 10
    metadata: dict[str, Scalar] = {}
    text_search: bool = True
    vector_search: bool = True
    bill_to: str = ""  # whose usage embedding the query is ("": the app's own)
    kind: Literal["chunk", "item"] = "chunk"


class Hit(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=False):
    """One found thing, with its fused score: a message, a snippet, a document's chunk or an item."""

    kind: DocKind
    user_id: str = ""
    thread_id: str = ""
    message_id: str | None = None
    snippet_id: str | None = None
    order: int = 0
    step_order: int = 0
    namespace: str | None = None  # a chunk's document: namespace, key, version, and its index
    doc_key: str | None = None
    doc_version: int = 0
    chunk: int = 0
    item_key: str | None = None  # an item: its namespace and key
    score: float = 0.0


class SearchCall(msgspec.Struct, kw_only=True):
    request: SearchRequest | ChunkSearchRequest
    reply: str  # the list the answer goes to


class SearchAnswer(msgspec.Struct, kw_only=True):
    ok: bool
    hits: list[Hit] = []
    error: str = ""


_encode = msgspec.msgpack.Encoder().encode
encode_call = _encode
encode_answer = _encode
decode_call = msgspec.msgpack.Decoder(SearchCall).decode
decode_answer = msgspec.msgpack.Decoder(SearchAnswer).decode


def hit_of(payload: dict[str, Any], score: float) -> Hit:
    """A stored point's payload (camelCase, see Indexer) as a Hit."""
    return msgspec.convert({**payload, "score": score}, Hit)
