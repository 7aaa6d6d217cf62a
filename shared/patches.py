"""Patches: what changed between two results of a live query, as JSON Patch operations.

A subscriber that asked for patches receives, after its first result, only the
operations that turn the value it holds into the new one (RFC 6902, applied in
order: ``add``, ``remove``, ``replace``, ``move``; paths are JSON Pointers).
Lists of records with an identity (``messageId``, ``threadId``...) are diffed
by that identity, so a new message on a page is one ``add`` and the message it
pushed off the page one ``remove``; a record that changed is patched member by
member; anything else that changed is replaced whole.

One ``Change`` is computed per new result of a shared query and only if a
subscriber wants it; every subscriber holding the previous result gets the
same encoded operations. When the operations would be no smaller than the
result itself, subscribers get the result.
"""

from __future__ import annotations

from typing import Any

import msgspec

Op = dict[str, Any]

# The member that names a record in a list, first found wins (streams carry both ids: stream first).
IDENTITIES = ("streamId", "messageId", "threadId", "snippetId", "documentId", "fileId", "runId", "key")

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def _pointer(path: str, member: str | int) -> str:
    if isinstance(member, int):
        return f"{path}/{member}"
    return f"{path}/" + member.replace("~", "~0").replace("/", "~1")


def _identity(items: list[Any]) -> list[tuple[str, Any]] | None:
    """Each item's (identity member, value), when every item is a record with a distinct one."""
    names: list[tuple[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            return None
        name = next((k for k in IDENTITIES if k in item), None)
        if name is None or not isinstance(item[name], (str, int)):
            return None
        names.append((name, item[name]))
    return names if len(set(names)) == len(names) else None


def diff(old: Any, new: Any, path: str = "") -> list[Op]:
    """Operations that turn ``old`` into ``new`` (JSON values as decoded: dicts, lists, scalars)."""
    if type(old) is type(new) and old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[Op] = [{"op": "remove", "path": _pointer(path, k)} for k in old if k not in new]
        for k, value in new.items():
            if k in old:
                ops += diff(old[k], value, _pointer(path, k))
            else:
                ops.append({"op": "add", "path": _pointer(path, k), "value": value})
        return ops
    if isinstance(old, list) and isinstance(new, list):
        before, after = _identity(old), _identity(new)
        if before is not None and after is not None:
            return _diff_records(old, before, new, after, path)
    return [{"op": "replace", "path": path, "value": new}]


def _diff_records(old: list[Any], before: list[tuple[str, Any]], new: list[Any],
                  after: list[tuple[str, Any]], path: str) -> list[Op]:
    kept = set(after)
    by_name = dict(zip(before, old, strict=True))
    ops: list[Op] = []
    current = list(before)
    for i in range(len(current) - 1, -1, -1):  # from the end, so the indexes still ahead stay valid
        if current[i] not in kept:
            ops.append({"op": "remove", "path": _pointer(path, i)})
            del current[i]
    for i, (name, item) in enumerate(zip(after, new, strict=True)):
        here = _pointer(path, i)
        if i < len(current) and current[i] == name:
            ops += diff(by_name[name], item, here)
        elif name in by_name:  # further down: moved up to here
            j = current.index(name, i)
            current.insert(i, current.pop(j))
            ops.append({"op": "move", "from": _pointer(path, j), "path": here})
            ops += diff(by_name[name], item, here)
        else:
            current.insert(i, name)
            ops.append({"op": "add", "path": here, "value": item})
    return ops


class Change:
    """One step of a shared query's value: from ``base`` to ``value`` (both encoded JSON)."""

    __slots__ = ("_computed", "_ops", "base", "value")

    def __init__(self, base: str, value: str) -> None:
        self.base = base
        self.value = value
        self._ops: str | None = None  # None: the whole result is smaller
        self._computed = False

    def ops_from(self, held: str | None) -> str | None:
        """The encoded operations for a subscriber holding ``held``; None when it needs the whole result."""
        if held is not self.base:
            return None
        if not self._computed:
            ops = _encode(diff(_decode(self.base), _decode(self.value))).decode()
            self._ops, self._computed = (ops if len(ops) < len(self.value) else None), True
        return self._ops


def apply(value: Any, ops: list[Op]) -> Any:
    """``value`` with ``ops`` applied (a new value; ``value`` is left as it was). For tests and clients."""
    root: list[Any] = [_decode(_encode(value))]
    for op in ops:
        parent, last = _walk(root, op["path"])
        kind = op["op"]
        if kind == "move":
            source, member = _walk(root, op["from"])
            moved = source.pop(member)
            parent, last = _walk(root, op["path"])
            _put(parent, last, moved, insert=True)
        elif kind == "remove":
            parent.pop(last)
        elif kind == "add":
            _put(parent, last, op["value"], insert=True)
        elif kind == "replace":
            _put(parent, last, op["value"], insert=False)
        else:
            raise ValueError(f"unknown patch operation {kind!r}")
    return root[0]


def _walk(root: list[Any], pointer: str) -> tuple[Any, Any]:
    """The container holding what ``pointer`` names, and its index or member there."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    node: Any = root
    member: Any = 0
    for part in parts:
        node = node[member]
        member = int(part) if isinstance(node, list) else part
    return node, member


def _put(parent: Any, member: Any, value: Any, *, insert: bool) -> None:
    if isinstance(parent, list) and insert:
        parent.insert(member, value)
    else:
        parent[member] = value
