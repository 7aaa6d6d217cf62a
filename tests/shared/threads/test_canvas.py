"""Canvases: every edit is written with its snippet (the state before and after, the version it
applied to, who made it) in one step; a stale edit is refused whole; an edit's earlier state is put
back (an element deleted comes back where it was, one added goes again), and that is an edit too;
a document's snippets are listed by themselves, newest first."""

from __future__ import annotations

import asyncio

import pytest

from threadline.shared.errors import BadRequest, Conflict, Forbidden, NotFound
from threadline.shared.storage.guard import Guard
from threadline.shared.threads import Store
from threadline.shared.threads.snippets import Edit

pytestmark = pytest.mark.anyio


def ids(canvas: object) -> list[tuple[str, object]]:
    return [(e.id, e.value) for e in canvas.elements]  # type: ignore[attr-defined]


async def test_each_edit_is_kept_with_its_states(store: Store) -> None:
    tid = (await store.threads.create("cv-ana")).thread_id
    canvases = store.canvases
    _, first, s1 = await canvases.edit(tid, "draft", "set", "title", by="user:cv-ana", caller="cv-ana",
                                       value="Trip notes", kind="title")
    assert first.version == 1 and ids(first) == [("title", "Trip notes")]
    assert (s1.kind, s1.document, s1.operation, s1.target, s1.before, s1.doc_version, s1.by) == (
        "canvas", "draft", "set", "title", None, 0, "user:cv-ana")
    assert s1.after == {"id": "title", "kind": "title", "value": "Trip notes"}
    await canvases.edit(tid, "draft", "set", "p1", by="user:cv-ana", caller="cv-ana", value="Day one", kind="paragraph")
    _, third, s3 = await canvases.edit(tid, "draft", "set", "title", by="agent:writer", caller="cv-ana",
                                       value="Lisbon trip", summary="a shorter title")
    assert third.version == 3 and ids(third) == [("title", "Lisbon trip"), ("p1", "Day one")]
    assert s3.before == {"id": "title", "kind": "title", "value": "Trip notes"} and s3.doc_version == 2
    assert s3.by == "agent:writer" and third.updated_by == "agent:writer"
    text = s3.text
    assert "set on title of draft v2 by agent:writer" in text and s3.snippet_id in text
    assert "before: " in text and "Trip notes" in text and "Lisbon trip" in text and "a shorter title" in text
    _, got = await canvases.get(tid, "draft", "cv-ana")
    assert got == third


async def test_a_stale_edit_is_refused_whole(store: Store) -> None:
    tid = (await store.threads.create("cv-bo")).thread_id
    await store.canvases.edit(tid, "draft", "set", "title", by="user:cv-bo", caller="cv-bo", value="A")
    before = await store.snippets.count(tid)
    with pytest.raises(Conflict):
        await store.canvases.edit(tid, "draft", "set", "title", by="user:cv-bo", caller="cv-bo", value="B",
                                  expected_version=0)
    assert await store.snippets.count(tid) == before and ids((await store.canvases.get(tid, "draft", None))[1]) == [
        ("title", "A")]
    with pytest.raises(NotFound):
        await store.canvases.edit(tid, "draft", "delete", "nothing", by="user:cv-bo", caller="cv-bo")
    with pytest.raises(BadRequest):
        await store.canvases.edit(tid, "draft", "set", "bad id", by="user:cv-bo", caller="cv-bo", value="x")


async def test_earlier_states_come_back_and_a_restore_can_be_undone(store: Store) -> None:
    tid = (await store.threads.create("cv-cy")).thread_id
    c = store.canvases

    async def edit(op: str, target: str, value: object = None) -> object:
        return (await c.edit(tid, "doc", op, target, by="user:cv-cy", caller="cv-cy", value=value))[2]  # type: ignore[arg-type]

    await edit("set", "title", "T")
    await edit("set", "p1", "one")
    chart = await edit("set", "chart", {"bars": [1, 2, 3]})
    await edit("set", "p2", "two")
    recolor = await edit("set", "chart", {"bars": [1, 2, 3], "color": "red"})
    deleted = await edit("delete", "p1")
    _, canvas = await c.get(tid, "doc", None)
    assert [i for i, _ in ids(canvas)] == ["title", "chart", "p2"]

    _, canvas, back = await c.restore(deleted.snippet_id, by="agent:writer", caller="cv-cy")  # type: ignore[attr-defined]
    assert ids(canvas)[1] == ("p1", "one")  # where it was
    assert (back.operation, back.restores, back.before, back.by) == ("restore", deleted.snippet_id, None,  # type: ignore[attr-defined]
                                                                     "agent:writer")
    _, canvas, _ = await c.restore(recolor.snippet_id, by="user:cv-cy", caller="cv-cy")  # type: ignore[attr-defined]
    assert dict(ids(canvas))["chart"] == {"bars": [1, 2, 3]}  # the chart as it was before
    _, canvas, undo = await c.restore(chart.snippet_id, by="user:cv-cy", caller="cv-cy")  # type: ignore[attr-defined]
    assert "chart" not in dict(ids(canvas))  # it did not exist before that edit
    _, canvas, _ = await c.restore(undo.snippet_id, by="user:cv-cy", caller="cv-cy")
    assert dict(ids(canvas))["chart"] == {"bars": [1, 2, 3]}  # the undo undone
    with pytest.raises(Conflict):  # the element it would remove is gone already... once removed twice
        await c.restore(chart.snippet_id, by="user:cv-cy", caller="cv-cy")  # type: ignore[attr-defined]
        await c.restore(chart.snippet_id, by="user:cv-cy", caller="cv-cy")  # type: ignore[attr-defined]
    _, plain = await store.snippets.add(tid, "cv-cy", kind="note", content="not an edit")
    with pytest.raises(BadRequest):
        await c.restore(plain.snippet_id, by="user:cv-cy", caller="cv-cy")


async def test_a_documents_snippets_are_listed_by_themselves(store: Store) -> None:
    tid = (await store.threads.create("cv-di")).thread_id
    made = [(await store.canvases.edit(tid, "doc", "set", f"p{n}", by="user:cv-di", caller="cv-di",
                                       value=str(n)))[2].snippet_id for n in range(5)]
    await store.canvases.edit(tid, "other", "set", "x", by="user:cv-di", caller="cv-di", value="x")
    await store.snippets.add(tid, "cv-di", kind="note", content="a note")
    _, app_edit = await store.snippets.add(tid, "cv-di", kind="edit", content="", target="cell A1",
                                           edit=Edit(document="doc", operation="format", before={"bold": False},
                                                     after={"bold": True}, doc_version=5, by="user:cv-di"))
    _, first = await store.snippets.list(tid, "cv-di", document="doc", num_items=3)
    assert [s.snippet_id for s in first.page] == [app_edit.snippet_id, made[4], made[3]] and not first.is_done
    _, rest = await store.snippets.list(tid, "cv-di", document="doc", num_items=3, cursor=first.continue_cursor)
    assert [s.snippet_id for s in rest.page] == [made[2], made[1], made[0]] and rest.is_done
    await store.snippets.delete(made[2], "cv-di")
    _, after = await store.snippets.list(tid, "cv-di", document="doc", num_items=10)
    assert made[2] not in [s.snippet_id for s in after.page] and len(after.page) == 5
    _, whole = await store.snippets.list(tid, "cv-di", num_items=20)
    assert len(whole.page) == 7  # every snippet of the thread


async def test_edits_made_at_once_each_apply_to_the_version_before(store: Store) -> None:
    tid = (await store.threads.create("cv-ed")).thread_id
    results = await asyncio.gather(*(store.canvases.edit(tid, "draft", "set", f"p{n}", by="user:cv-ed",
                                                         caller="cv-ed", value=n) for n in range(12)))
    _, canvas = await store.canvases.get(tid, "draft", None)
    assert canvas.version == 12 and sorted(v for _, v in ids(canvas)) == list(range(12))  # type: ignore[type-var]
    assert sorted(s.doc_version for _, _, s in results) == list(range(12))  # type: ignore[type-var]


async def test_a_resent_edit_is_done_once_and_a_reader_cannot_edit(store: Store) -> None:
    tid = (await store.threads.create("cv-fo")).thread_id
    guard = Guard("e" * 40, 60)
    _, c1, s1 = await store.canvases.edit(tid, "draft", "set", "title", by="user:cv-fo", caller="cv-fo", value="A",
                                          guard=guard)
    _, c2, s2 = await store.canvases.edit(tid, "draft", "set", "title", by="user:cv-fo", caller="cv-fo", value="A",
                                          guard=guard)
    assert s2.snippet_id == s1.snippet_id and c2.version == c1.version == 1
    assert await store.snippets.count(tid) == 1
    await store.threads.add_member(tid, "cv-fo", "cv-rd", "reader")
    with pytest.raises(Forbidden):
        await store.canvases.edit(tid, "draft", "set", "title", by="user:cv-rd", caller="cv-rd", value="B")
    with pytest.raises(NotFound):
        await store.canvases.get(tid, "draft", "cv-stranger")
    with pytest.raises(NotFound):  # not a conflict: nothing tells a stranger the canvas's version
        await store.canvases.edit(tid, "draft", "set", "title", by="user:cv-stranger", caller="cv-stranger",
                                  value="B", expected_version=0)
    with pytest.raises(NotFound):
        await store.canvases.restore(s1.snippet_id, by="user:cv-stranger", caller="cv-stranger")
