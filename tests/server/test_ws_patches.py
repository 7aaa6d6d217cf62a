"""Live queries as patches: a subscriber that asks for them gets what changed after its first result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.wsutil import Tab
from threadline.shared.patches import apply

pytestmark = pytest.mark.anyio


def frames_of(tab: Tab, sub_id: str) -> list[dict[str, Any]]:
    return [f for f in tab.frames if f.get("id") == sub_id and f["type"] in ("result", "patch")]


def replay(frames: list[dict[str, Any]]) -> dict[int, Any]:
    """The value at each version, as a patching client holds it; checks each patch's base."""
    values: dict[int, Any] = {}
    held: tuple[int, Any] | None = None
    for frame in frames:
        if frame["type"] == "result":
            held = frame["version"], frame["value"]
        else:
            assert held is not None and frame["baseVersion"] == held[0], frame
            held = frame["version"], apply(held[1], frame["ops"])
        values[held[0]] = held[1]
    return values


async def test_after_the_first_result_a_patching_tab_gets_only_what_changed(web: str) -> None:
    patching, plain = await Tab.open(web, client_id="patching"), await Tab.open(web, client_id="plain")
    tid = (await patching.mutate("threads.create", {"title": "patches"}))["value"]["threadId"]
    args = {"threadId": tid, "paginationOpts": {"numItems": 5}}

    async def send(i: int) -> None:
        done = await patching.mutate("messages.send", {"threadId": tid, "prompt": f"message {i} " + "x" * 500,
                                                       "generate": False})
        assert done["value"]["order"] == i

    for i in range(1, 6):
        await send(i)
    await patching.send({"type": "subscribe", "id": "q", "query": "messages.list", "args": args, "patches": True})
    await patching.wait(lambda f: f.get("id") == "q" and f["type"] == "result")
    await plain.subscribe("q", "messages.list", args)
    for i in range(6, 14):
        await send(i)
        # read your writes: the patch for this send came before `mutated`
        assert any(f["type"] == "patch" and added_order(f) == i for f in frames_of(patching, "q")), i
    await plain.wait_result("q", lambda v: len(v["page"]) == 5 and v["page"][0]["order"] == 13)
    await patching.mutate("threads.update", {"threadId": tid, "title": "renamed"})  # not this query's value
    got, expected = frames_of(patching, "q"), frames_of(plain, "q")
    assert [f["type"] for f in got] == ["result"] + ["patch"] * 8
    assert replay(got) == replay(expected)
    for patch, result in zip(got[1:], expected[1:], strict=True):
        newest = json.dumps(result["value"]["page"][0], separators=(",", ":"))
        assert len(json.dumps(patch, separators=(",", ":"))) <= 2 * len(newest)
        assert len(json.dumps(result, separators=(",", ":"))) > 4 * len(newest)  # a whole page is not
    await patching.close()
    await plain.close()


def added_order(frame: dict[str, Any]) -> int | None:
    added = [op["value"] for op in frame["ops"] if op["op"] == "add" and op["path"] == "/page/0"]
    return added[0]["order"] if added else None


async def test_a_renamed_thread_is_patched_by_its_changed_members(web: str) -> None:
    tab = await Tab.open(web, client_id="lists")
    ids = [(await tab.mutate("threads.create", {"title": f"t{i}"}))["value"]["threadId"] for i in range(3)]
    await tab.send({"type": "subscribe", "id": "l", "query": "threads.list", "args": {}, "patches": True})
    first = await tab.wait(lambda f: f.get("id") == "l" and f["type"] == "result")
    assert [t["threadId"] for t in first["value"]["page"]] == ids[::-1]
    await tab.mutate("threads.update", {"threadId": ids[0], "title": "back on top"})
    frames = frames_of(tab, "l")
    assert [f["type"] for f in frames] == ["result", "patch"]
    assert {op["path"] for op in frames[1]["ops"]} == {"/page/2/title", "/page/2/updatedAt"}
    value = replay(frames)[frames[1]["version"]]
    assert [(t["threadId"], t["title"]) for t in value["page"]] == [(ids[2], "t2"), (ids[1], "t1"),
                                                                    (ids[0], "back on top")]
    await tab.close()


async def test_a_second_subscriber_joining_late_starts_from_a_whole_result(web: str) -> None:
    first, late = await Tab.open(web, client_id="first"), await Tab.open(web, client_id="late")
    tid = (await first.mutate("threads.create", {}))["value"]["threadId"]
    args = {"threadId": tid}
    await first.send({"type": "subscribe", "id": "q", "query": "messages.list", "args": args, "patches": True})
    await first.wait(lambda f: f.get("id") == "q" and f["type"] == "result")
    await first.mutate("messages.send", {"threadId": tid, "prompt": "one", "generate": False})
    await late.send({"type": "subscribe", "id": "q", "query": "messages.list", "args": args, "patches": True})
    joined = await late.wait(lambda f: f.get("id") == "q" and f["type"] == "result")
    assert [m["text"] for m in joined["value"]["page"]] == ["one"]
    await first.mutate("messages.send", {"threadId": tid, "prompt": "two", "generate": False})
    for tab in (first, late):
        frame = await tab.wait(lambda f: f.get("id") == "q" and f["type"] == "patch"
                               and f["version"] > joined["version"])
        assert frame["baseVersion"] == joined["version"] or tab is first
        assert [m["text"] for m in replay(frames_of(tab, "q"))[frame["version"]]["page"]] == ["two", "one"]
    await first.close()
    await late.close()
