"""Finding items of the cross-thread store (shared.items) by meaning: hybrid search over the
embedded items of some namespaces, each hit read back from the store of record (an item deleted or
no longer indexed since its point was written is left out; one changed is shown as it is now)."""

from __future__ import annotations

import msgspec

from threadline.shared.items.store import Item
from threadline.shared.threads import Store
from threadline.shared.vectors.rpc import ChunkSearchRequest
from threadline.shared.vectors.search import MemorySearch


class ItemResult(msgspec.Struct, rename="camel", kw_only=True):
    item: Item
    score: float


async def search_items(store: Store, memory: MemorySearch, namespaces: list[str], text: str, *,
                       limit: int = 10, text_search: bool = True, vector_search: bool = True,
                       bill_to: str = "") -> list[ItemResult]:
    """The items of ``namespaces`` that best match ``text``, best first. ``bill_to``: the user whose
    usage embedding the query is ("": the app's own)."""
    hits = await memory.search(ChunkSearchRequest(
        namespaces=tuple(namespaces), text=text, limit=limit, text_search=text_search,
        vector_search=vector_search, bill_to=bill_to, kind="item"))
    found = [((h.namespace or "", h.item_key or ""), h.score) for h in hits if h.kind == "item"]
    items = await store.items.many([ref for ref, _ in found])
    return [ItemResult(item=items[ref], score=score) for ref, score in found if ref in items and items[ref].index]
