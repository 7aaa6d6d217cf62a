"""The cross-thread store: items by key with their own versions, listed in key order by prefix, bounded
in bytes per namespace, and queued for embedding in the same step as each write."""

from __future__ import annotations

import msgspec
import pytest

from threadline.shared import keys
from threadline.shared.errors import BadRequest, Conflict, TooLarge
from threadline.shared.indexing.ops import decode_op
from threadline.shared.items.store import MAX_VALUE_BYTES, item_ref
from threadline.shared.storage.guard import Guard
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio


async def ops(store: Store, namespace: str) -> list[tuple[str, str]]:
    raw = await store.redis.lrange(keys.vector_ops(namespace), 0, -1)
    found = [decode_op(r) for r in raw]
    return [(op.kind, op.ref) for op in found if op is not None and op.kind.endswith("_item")]


async def test_an_item_has_versions_and_a_stale_write_is_refused(store: Store) -> None:
    items, ns = store.items, "user:it-ana"
    v1, first = await items.put(ns, "preferences/drink", {"tea": "green", "sugar": False}, by="user:it-ana")
    assert (first.version, first.namespace, first.updated_by) == (1, ns, "user:it-ana")
    _, second = await items.put(ns, "preferences/drink", "coffee", expected_version=1)
    assert second.version == 2 and second.created_at == first.created_at
    with pytest.raises(Conflict):
        await items.put(ns, "preferences/drink", "lost", expected_version=1)
    with pytest.raises(Conflict):  # 0: only if there is none
        await items.put(ns, "preferences/drink", "lost", expected_version=0)
    stored = await items.get(ns, "preferences/drink")
    assert (stored.value, stored.version, stored.created_at) == ("coffee", 2, first.created_at)
    v_del, deleted = await items.delete(ns, "preferences/drink", expected_version=2)
    assert deleted and v_del > v1 and await items.find(ns, "preferences/drink") is None
    assert (await items.delete(ns, "preferences/drink"))[1] is False
    assert ns not in await items.namespaces()  # (its last item went)
    _, again = await items.put(ns, "preferences/drink", 1, expected_version=0)
    assert again.version == 1 and ns in await items.namespaces()  # a new item starts over


async def test_values_keep_their_json_exactly(store: Store) -> None:
    value = {"n": 12345678901234567, "f": 0.1, "empty": [], "obj": {}, "s": 'a "quoted" \\ line\n',
             "u": "café ✓", "null": None, "nested": [[1, [2, {"x": True}]]]}
    await store.items.put("user:it-json", "k", value)
    assert (await store.items.get("user:it-json", "k")).value == value
    tricky = 'x","version":-1,"createdAt":-1,"y'  # the text the write script fills in, inside a value
    await store.items.put("user:it-json", tricky, tricky)
    got = await store.items.get("user:it-json", tricky)
    assert (got.key, got.value, got.version) == (tricky, tricky, 1)


async def test_listing_is_in_key_order_by_prefix_and_page(store: Store) -> None:
    ns = "team:it-list"
    for key in ["b/2", "a/1", "b/1", "b/3", "c", "b", "b0"]:
        await store.items.put(ns, key, key)
    _, everything = await store.items.page(ns, num_items=50)
    assert [i.key for i in everything.page] == ["a/1", "b", "b/1", "b/2", "b/3", "b0", "c"] and everything.is_done
    _, first = await store.items.page(ns, prefix="b/", num_items=2)
    assert [i.key for i in first.page] == ["b/1", "b/2"] and not first.is_done
    _, rest = await store.items.page(ns, prefix="b/", num_items=2, cursor=first.continue_cursor)
    assert [i.key for i in rest.page] == ["b/3"] and rest.is_done
    _, none = await store.items.page(ns, prefix="z")
    assert none.page == [] and none.is_done


async def test_a_namespace_holds_a_bounded_number_of_bytes(store: Store) -> None:
    items, ns = store.items, "user:it-full"
    items.namespace_bytes = 65536
    try:
        big = "x" * 15000
        for n in range(4):
            await items.put(ns, f"k{n}", big)
        with pytest.raises(TooLarge):
            await items.put(ns, "k4", big)
        assert await items.find(ns, "k4") is None  # refused whole
        await items.put(ns, "k0", "small")  # replacing frees what the old value held
        await items.put(ns, "k4", big)
        await items.delete(ns, "k1")
        await items.put(ns, "k5", big)
        with pytest.raises(TooLarge):
            await items.put(ns, "k6", big)
    finally:
        items.namespace_bytes = 4 << 20
    with pytest.raises(TooLarge):
        await items.put(ns, "huge", "y" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(BadRequest):
        await items.put(ns, "bad\nkey", 1)
    with pytest.raises(BadRequest):
        await items.put(ns, "k" * 257, 1)


async def test_each_write_queues_its_index_op_in_the_same_step(store: Store) -> None:
    ns = "user:it-ops"
    ref = item_ref(ns, "fact")
    await store.items.put(ns, "fact", "the dog is called Rex")
    await store.items.put(ns, "plain", "not searched", index=False)
    assert await ops(store, ns) == [("embed_item", ref)]  # an item not indexed queues nothing
    await store.items.put(ns, "fact", "the dog is called Max", index=False)  # no longer indexed: its vector goes
    await store.items.delete(ns, "fact")  # (was not indexed: nothing more to forget)
    await store.items.put(ns, "fact", "again")
    await store.items.delete(ns, "fact")
    assert await ops(store, ns) == [("embed_item", ref), ("forget_item", ref), ("embed_item", ref),
                                    ("forget_item", ref)]


async def test_a_resent_guarded_write_is_done_once(store: Store) -> None:
    ns, guard = "user:it-guard", Guard("d" * 40, 60)
    first = await store.items.put(ns, "k", "v", expected_version=0, record=guard.namespace(ns))
    again = await store.items.put(ns, "k", "v", expected_version=0, record=guard.namespace(ns))
    assert again[0] == first[0] and again[1].version == 1  # answered from its record, not a conflict
    stored = await store.items.get(ns, "k")
    assert stored.version == 1 and msgspec.json.encode(stored.value) == b'"v"'
