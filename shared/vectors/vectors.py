"""Vector stores: one collection per (embedding model, dimension), dense + sparse vectors.

Two engines with one interface (``VectorStore``): Qdrant Edge in the index
process (embedded mode, shared.vectors.edge) and a Qdrant server through
qdrant-client (shared.vectors.server, with QDRANT_URL: any process may search it).
Both filter the same way (the user's points; this thread before the prompt's
order, or other threads too) and fuse dense and sparse results with RRF.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

DENSE, SPARSE = "dense", "text"
_NS = uuid.UUID("8f3a6c1e-2d4b-4c1a-9e7f-5b6a7c8d9e0f")


def point_id(ref: str) -> str:
    """A stable point id for a message or snippet id."""
    return str(uuid.uuid5(_NS, ref))


Scalar = str | int | bool


def user_kind(user_id: str, kind: str) -> str:
    """The payload key ``userKind`` every point carries: its owner and kind in one indexed value."""
    return f"{user_id}/{kind}"


def collection_name(model: str, dim: int) -> str:
    return "tl_" + re.sub(r"[^a-zA-Z0-9_]+", "_", model) + f"_{dim}"


@dataclass(slots=True)
class Point:
    ref: str  # messageId or snippetId
    dense: list[float]
    sparse: tuple[list[int], list[float]]
    payload: dict[str, Any]


@dataclass(slots=True)
class Hit:
    payload: dict[str, Any]
    score: float


class VectorStore(Protocol):
    server: bool  # a server several processes share (not an embedded engine)

    def ensure(self, model: str, dim: int) -> str:
        """The collection for vectors of ``model`` (made on first use)."""

    def collections(self) -> list[str]: ...

    def upsert(self, collection: str, points: list[Point]) -> None: ...

    def delete_refs(self, refs: list[str]) -> None:
        """Forget these messages or snippets in every collection."""

    def delete_where(self, key: str, value: str) -> None:
        """Forget every point whose payload ``key`` is ``value`` (e.g. a thread's)."""

    def count(self, collection: str) -> int: ...

    def flush(self) -> None:
        """Persist what was written (an embedded engine: so a restart replays little)."""

    def search(self, collection: str, *, user_id: str, thread_id: str, before_order: int | None,
               other_threads: bool, dense: list[float] | None, sparse: tuple[list[int], list[float]] | None,
               limit: int, score_threshold: float | None = None,
               kinds: tuple[str, ...] = ("message",)) -> list[Hit]: ...

    def search_chunks(self, collection: str, *, namespaces: list[str], metadata: dict[str, Scalar],
                      dense: list[float] | None, sparse: tuple[list[int], list[float]] | None,
                      limit: int, kind: str = "chunk") -> list[Hit]:
        """Document chunks (or store items: ``kind="item"``) of these namespaces whose metadata match,
        by fused score."""
