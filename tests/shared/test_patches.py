"""Patches: JSON Patch operations between two results, computed once and applied by clients."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from threadline.shared.patches import Change, apply, diff


def message(i: int, text: str = "", **extra: Any) -> dict[str, Any]:
    return {"messageId": f"m{i}", "order": i, "status": "success", "text": text or f"message {i}",
            "parts": [{"type": "text", "text": text or f"message {i}"}], **extra}


def page(ids: list[int], **extra: Any) -> dict[str, Any]:
    return {"page": [message(i) for i in ids], "continueCursor": str(ids[-1] if ids else ""),
            "isDone": False, **extra}


def test_a_new_message_on_a_full_page_is_one_add_and_one_remove() -> None:
    old, new = page(list(range(50, 0, -1))), page(list(range(51, 1, -1)))
    ops = diff(old, new)
    assert ops == [{"op": "remove", "path": "/page/49"},
                   {"op": "add", "path": "/page/0", "value": message(51)},
                   {"op": "replace", "path": "/continueCursor", "value": "2"}]
    assert apply(old, ops) == new


def test_a_changed_record_is_patched_member_by_member_and_a_moved_one_moved() -> None:
    old = {"page": [{"threadId": "a", "title": "A"}, {"threadId": "b", "title": "B"}, {"threadId": "c"}]}
    new = {"page": [{"threadId": "c", "title": "C"}, {"threadId": "a", "title": "A"}, {"threadId": "b"}]}
    ops = diff(old, new)
    assert {"op": "move", "from": "/page/2", "path": "/page/0"} in ops
    assert {"op": "add", "path": "/page/0/title", "value": "C"} in ops
    assert {"op": "remove", "path": "/page/2/title"} in ops
    assert apply(old, ops) == new


def test_members_with_slashes_and_tildes_are_escaped() -> None:
    old = {"metadata": {"a/b": 1, "c~d": 2}}
    new = {"metadata": {"a/b": 3, "e~/": 4}}
    ops = diff(old, new)
    assert {"op": "replace", "path": "/metadata/a~1b", "value": 3} in ops
    assert {"op": "remove", "path": "/metadata/c~0d"} in ops
    assert apply(old, ops) == new


def test_lists_without_distinct_identities_are_replaced_whole() -> None:
    old = {"page": [{"messageId": "m1"}, {"messageId": "m1"}], "parts": [1, 2]}
    new = {"page": [{"messageId": "m1"}], "parts": [1, 2, 3]}
    assert diff(old, new) == [{"op": "replace", "path": "/page", "value": [{"messageId": "m1"}]},
                              {"op": "replace", "path": "/parts", "value": [1, 2, 3]}]
    assert diff(1, True) == [{"op": "replace", "path": "", "value": True}]  # a bool is not the number 1


def mutate(rng: random.Random, value: dict[str, Any], next_id: list[int]) -> dict[str, Any]:
    new = copy.deepcopy(value)
    items = new["page"]
    for _ in range(rng.randint(0, 4)):
        kind = rng.choice(["add", "remove", "edit", "move", "meta"])
        if kind == "add":
            next_id[0] += 1
            items.insert(rng.randint(0, len(items)), message(next_id[0], metadata={"k/~": next_id[0]}))
        elif kind == "remove" and items:
            items.pop(rng.randrange(len(items)))
        elif kind == "edit" and items:
            item = items[rng.randrange(len(items))]
            item["text"] += " more"
            item["status"] = rng.choice(["pending", "success", "failed"])
            item.pop("parts", None) if rng.random() < 0.3 else item.setdefault("parts", []).append({"type": "x"})
        elif kind == "move" and len(items) > 1:
            items.insert(rng.randrange(len(items)), items.pop(rng.randrange(len(items))))
        elif kind == "meta":
            new["isDone"] = not new["isDone"]
            new.pop("streams", None) if "streams" in new else new.update(streams=[{"streamId": "s", "seq": 1}])
    return new


def test_any_sequence_of_changes_is_reproduced_exactly() -> None:
    rng = random.Random(29)
    next_id = [20]
    value = page(list(range(20, 0, -1)))
    for _ in range(2_000):
        new = mutate(rng, value, next_id)
        before = copy.deepcopy(value)
        assert apply(value, diff(value, new)) == new
        assert value == before  # applying makes a new value
        value = new


def test_a_change_is_sent_only_to_who_holds_its_base_and_only_when_smaller() -> None:
    base = json.dumps(page(list(range(50, 0, -1))))
    change = Change(base, json.dumps(page(list(range(51, 1, -1)))))
    ops = change.ops_from(base)
    assert ops is not None and len(ops) < 400
    assert change.ops_from(base) is ops  # computed once for every subscriber
    assert change.ops_from(json.dumps(page(list(range(50, 0, -1))))) is None  # an equal copy is not the base
    assert change.ops_from(None) is None
    whole = Change(json.dumps({"a": 1}), json.dumps({"b": 2}))
    assert whole.ops_from(whole.base) is None  # two operations are longer than the value


def test_unknown_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="copy"):
        apply({}, [{"op": "copy", "from": "/a", "path": "/b"}])
