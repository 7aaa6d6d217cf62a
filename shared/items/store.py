"""The cross-thread store: small JSON items by key in a namespace, for apps and agents.

A namespace is one of the documents' (shared.documents.store): ``user:<id>``, ``team:<id>`` or
``global`` (the app's). An item is a JSON value (at most MAX_VALUE_BYTES encoded) under a key (a
path such as ``preferences/food``: the namespace lists its keys in order, by prefix), with its own
version for compare-and-set writes. An item marked ``index`` is embedded by the index process
(queued in the same atomic step as the write) and found by meaning (shared.rag.items); its text is
``text`` when given, otherwise its key and value. A namespace's items hold at most a set number of
bytes (ITEMS_NAMESPACE_BYTES): a write past it is refused, never half done.
"""

from __future__ import annotations

from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.documents.store import SEP
from threadline.shared.errors import BadRequest, NotFound, TooLarge
from threadline.shared.json_depth import check_depth
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, redis_errors, text, texts
from threadline.shared.storage.guard import Record
from threadline.shared.storage.pagination import Page
from threadline.shared.storage.scripts import Scripts, lua

ITEM_WRITE = lua(__file__, "item_write")
MAX_KEY_CHARS = 256
MAX_VALUE_BYTES = 16 * 1024
MAX_TEXT_CHARS = 4000


class Item(msgspec.Struct, rename="camel", kw_only=True):
    version: int  # (the first two fields: item_write.lua fills them in)
    created_at: int
    namespace: str
    key: str
    value: Any
    text: str | None = None  # what is embedded, when not the key and value
    index: bool = True  # found by meaning (embedded)
    updated_at: int = 0
    updated_by: str = ""  # "user:<id>", "agent:<name>" or "" (the app's code)

    @property
    def search_text(self) -> str:
        if self.text:
            return self.text
        shown = self.value if isinstance(self.value, str) else msgspec.json.encode(self.value).decode()
        return f"{self.key}: {shown}"


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Item).decode


def item_ref(namespace: str, key: str) -> str:
    """An item's ref in the index ops and as its point's ref (no document chunk's ref looks like it)."""
    return f"item{SEP}{namespace}{SEP}{key}"


def parse_item_ref(ref: str) -> tuple[str, str]:
    _, namespace, key = ref.split(SEP, 2)
    return namespace, key


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_CHARS:
        raise BadRequest(f"an item's key has 1 to {MAX_KEY_CHARS} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise BadRequest("an item's key holds no control characters")
    return key


class ItemStore:
    def __init__(self, redis: Client, scripts: Scripts, *, namespace_bytes: int = 4 << 20) -> None:
        self._redis = redis
        self._scripts = scripts
        self.namespace_bytes = namespace_bytes

    def _keys(self, namespace: str) -> list[str]:
        return [keys.item_records(namespace), keys.item_keys(namespace), keys.item_state(namespace),
                keys.vector_ops(namespace), keys.part_of(keys.ITEM_NAMESPACES, namespace)]

    async def put(self, namespace: str, key: str, value: Any, *, text: str | None = None, index: bool = True,
                  by: str = "", expected_version: int | None = None,
                  record: Record | None = None) -> tuple[int, Item]:
        """Write ``value`` under ``key`` (a new version); with ``expected_version`` only if the item is at
        that version (0: only if there is none), Conflict otherwise. (Namespace version, the item.)"""
        check_key(key)
        encoded = _encode(value)
        check_depth(encoded)
        if len(encoded) > MAX_VALUE_BYTES:
            raise TooLarge(f"an item's value is at most {MAX_VALUE_BYTES} bytes of JSON")
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise BadRequest(f"an item's text has at most {MAX_TEXT_CHARS} characters")
        now = now_ms()
        item = Item(version=-1, created_at=-1, namespace=namespace, key=key, value=value, text=text or None,
                    index=index, updated_at=now, updated_by=by)
        version, _, item.version, item.created_at = await self._write(namespace, key, _encode(item),
                                                                      expected_version, index, now, record)
        return version, item

    async def delete(self, namespace: str, key: str, *, expected_version: int | None = None,
                     record: Record | None = None) -> tuple[int, bool]:
        version, changed, _, _ = await self._write(namespace, check_key(key), b"", expected_version, False, 0,
                                                   record)
        return version, changed

    async def _write(self, namespace: str, key: str, body: bytes, expected: int | None, index: bool, now: int,
                     record: Record | None) -> tuple[int, bool, int, int]:
        with redis_errors():
            version, changed, item_version, created = await self._scripts.run(
                ITEM_WRITE, self._keys(namespace),
                [keys.item_channel(namespace), key, body, -1 if expected is None else expected,
                 self.namespace_bytes, item_ref(namespace, key), "1" if index else "0", now, namespace], record)
        return int(version), bool(changed), int(item_version), int(created)

    async def find(self, namespace: str, key: str) -> Item | None:
        with redis_errors():
            raw = await self._redis.hget(keys.item_records(namespace), key)
        return _decode(raw) if raw is not None else None

    async def get(self, namespace: str, key: str) -> Item:
        item = await self.find(namespace, key)
        if item is None:
            raise NotFound(f"no item {key!r} in {namespace}")
        return item

    async def many(self, refs: list[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        """The items named by (namespace, key) that exist, read in one round trip."""
        if not refs:
            return {}
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for namespace, key in refs:
                    pipe.hget(keys.item_records(namespace), key)
                raws = await pipe.execute()
        return {ref: _decode(raw) for ref, raw in zip(refs, raws, strict=True) if raw is not None}

    async def page(self, namespace: str, *, prefix: str = "", num_items: int = 50,
                   cursor: str | None = None) -> tuple[int, Page[Item]]:
        """(namespace version, its items whose key starts with ``prefix``, in key order after ``cursor``:
        the last key of the page before)."""
        low = f"({cursor}" if cursor and cursor >= prefix else f"[{prefix}" if prefix else "-"
        high = prefix.encode() + b"\xff" if prefix else b"+"  # (0xff is in no UTF-8 text)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.item_state(namespace), "version")
                pipe.zrangebylex(keys.item_keys(namespace), low, b"[" + high if prefix else high,
                                 start=0, num=num_items + 1)
                version, names = await pipe.execute()
            more = len(names) > num_items
            names = names[:num_items]
            raws = await self._redis.hmget(keys.item_records(namespace), names) if names else []
        items = [_decode(r) for r in raws if r is not None]
        nxt = text(names[-1]) if names else (cursor or "")
        return int(version or 0), Page(page=items, continue_cursor=nxt, is_done=not more)

    async def namespaces(self) -> list[str]:
        """Every namespace holding an item (re-embedding walks them)."""
        with redis_errors():
            parts = await partitions.each(self._redis, keys.ITEM_NAMESPACES, lambda pipe, key: pipe.smembers(key))
        return sorted({name for part in parts for name in texts(part)})

    async def version(self, namespace: str) -> int:
        with redis_errors():
            return int(await self._redis.hget(keys.item_state(namespace), "version") or 0)
