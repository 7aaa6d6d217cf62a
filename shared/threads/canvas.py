"""Canvases: a document of a thread that people and agents edit element by element (a title, a
paragraph, a chart's data), every edit kept as a snippet (shared.threads.snippets) with the state
before and after it, written in the same atomic step as the edit (lua/canvas_write.lua).

A canvas is a list of elements, each with an id, a kind (``title``, ``paragraph``, ``chart``...) and a
JSON value, and a version counting its edits. An edit ``set``s an element (replaced where it is, or
added at ``position``, the end by default) or ``delete``s one; ``restore`` puts an element back as an
earlier edit's snippet found it (its ``before``: removed again if it did not exist then), and is an
edit too, so it can itself be undone. An edit names the version it was made from
(``expected_version``; a stale one is a conflict) or, without one, applies to the newest version
(retried when another edit came first).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest, Conflict, NotFound, TooLarge
from threadline.shared.storage.client import Client, redis_errors
from threadline.shared.storage.guard import Guard, in_thread
from threadline.shared.storage.scripts import Scripts, lua
from threadline.shared.threads.snippets import (
    Edit,
    Snippet,
    SnippetStore,
    new_snippet_id,
    thread_of_snippet,
)
from threadline.shared.threads.threads import ThreadStore

CANVAS_WRITE = lua(__file__, "canvas_write")
MAX_ELEMENTS = 200
MAX_VALUE_BYTES = 64 * 1024
MAX_CANVAS_BYTES = 512 * 1024
RETRIES = 64  # edits without a version that another came before (each is retried on the newest)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
# what an edit does to the canvas as it is now: (set|delete, target, value, kind, position, restores)
Plan = Callable[["Canvas"], tuple[Literal["set", "delete"], str, Any, "str | None", "int | None", "str | None"]]


class Element(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    kind: str = "text"
    value: Any = None


class Canvas(msgspec.Struct, rename="camel", kw_only=True):
    version: int  # (the first field: canvas_write.lua reads it)
    canvas_id: str
    thread_id: str
    elements: list[Element] = msgspec.field(default_factory=list)
    updated_at: int = 0
    updated_by: str = ""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Canvas).decode


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise BadRequest(f"a {what} is 1-100 letters, digits and _ . : - (starting with a letter or digit)")
    return name


def applied(canvas: Canvas, operation: Literal["set", "delete"], target: str, value: Any = None,
            kind: str | None = None, position: int | None = None) -> tuple[Canvas, Element | None, int]:
    """The canvas after one edit, the element as it was (None: there was none) and where it was
    (or went)."""
    elements = list(canvas.elements)
    at = next((i for i, e in enumerate(elements) if e.id == target), None)
    old = elements[at] if at is not None else None
    if operation == "delete":
        if at is None:
            raise NotFound(f"the canvas has no element {target!r}")
        del elements[at]
    else:
        if value is None:
            raise BadRequest("a set needs a value")
        if len(_encode(value)) > MAX_VALUE_BYTES:
            raise TooLarge(f"an element's value is at most {MAX_VALUE_BYTES} bytes of JSON")
        new = Element(id=target, kind=kind or (old.kind if old is not None else "text"), value=value)
        if at is not None and position is None:
            elements[at] = new
        else:
            if at is not None:
                del elements[at]
            at = len(elements) if position is None else max(0, min(position, len(elements)))
            elements.insert(at, new)
        if len(elements) > MAX_ELEMENTS:
            raise TooLarge(f"a canvas has at most {MAX_ELEMENTS} elements")
    assert at is not None
    return msgspec.structs.replace(canvas, elements=elements), old, at


class CanvasStore:
    def __init__(self, redis: Client, scripts: Scripts, threads: ThreadStore, snippets: SnippetStore) -> None:
        self._redis = redis
        self._scripts = scripts
        self._threads = threads
        self._snippets = snippets

    async def find(self, thread_id: str, canvas_id: str) -> Canvas | None:
        with redis_errors():
            raw = await self._redis.hget(keys.canvases(thread_id), canvas_id)
        return _decode(raw) if raw is not None else None

    async def get(self, thread_id: str, canvas_id: str, user_id: str | None) -> tuple[int, Canvas]:
        """(thread version, the canvas: version 0 and no elements when none was made yet)."""
        version, _ = await self._threads.get_versioned(thread_id, user_id)
        found = await self.find(thread_id, check_name(canvas_id, "canvas id"))
        return version, found or Canvas(version=0, canvas_id=canvas_id, thread_id=thread_id)

    async def edit(self, thread_id: str, canvas_id: str, operation: Literal["set", "delete"], target: str, *,
                   by: str, caller: str, value: Any = None, kind: str | None = None, position: int | None = None,
                   expected_version: int | None = None, summary: str | None = None, message_id: str | None = None,
                   guard: Guard | None = None) -> tuple[int, Canvas, Snippet]:
        """Edit an element; its snippet holds the state before and after. ``by``: who, as
        ``user:<id>`` or ``agent:<name>``; ``caller``: the user whose rights apply ('' trusted code).
        (Thread version, the canvas after, the snippet.)"""
        check_name(target, "target")
        if kind is not None:
            check_name(kind, "kind")
        await self._threads.get(thread_id, caller or None, need="writer")  # (no answer tells a stranger of it)
        return await self._write(thread_id, canvas_id, lambda c: (operation, target, value, kind, position, None),
                                 by=by, caller=caller, expected_version=expected_version, summary=summary,
                                 message_id=message_id, guard=guard)

    async def restore(self, snippet_id: str, *, by: str, caller: str, expected_version: int | None = None,
                      summary: str | None = None, guard: Guard | None = None,
                      canvas_id: str | None = None) -> tuple[int, Canvas, Snippet]:
        """Put the element an edit changed back as it was before that edit (``canvas_id``: only an
        edit of that canvas)."""
        thread_id = thread_of_snippet(snippet_id)
        await self._threads.get(thread_id, caller or None, need="writer")  # (before anything of it is read)
        earlier = await self._snippets.get(snippet_id)
        if earlier.document is None or earlier.target is None or earlier.kind != "canvas":
            raise BadRequest("only a canvas edit's snippet can be restored")
        if canvas_id is not None and earlier.document != canvas_id:
            raise BadRequest(f"that snippet is not an edit of the canvas {canvas_id!r}")

        def plan(canvas: Canvas) -> tuple[Literal["set", "delete"], str, Any, str | None, int | None, str | None]:
            target = earlier.target or ""
            there = any(e.id == target for e in canvas.elements)
            if earlier.before is None:  # it did not exist before that edit
                if not there:
                    raise Conflict(f"the canvas has no element {target!r} now: nothing to put back")
                return "delete", target, None, None, None, snippet_id
            before = msgspec.convert(earlier.before, Element)
            return "set", target, before.value, before.kind, None if there else earlier.position, snippet_id

        return await self._write(thread_id, earlier.document, plan, by=by, caller=caller,
                                 expected_version=expected_version, guard=guard,
                                 summary=summary or f"put back {earlier.target} as it was before snippet {snippet_id}")

    async def _write(self, thread_id: str, canvas_id: str, plan: Plan, *, by: str, caller: str,
                     expected_version: int | None, summary: str | None, guard: Guard | None,
                     message_id: str | None = None) -> tuple[int, Canvas, Snippet]:
        check_name(canvas_id, "canvas id")
        for _ in range(RETRIES):
            canvas = await self.find(thread_id, canvas_id) or Canvas(version=0, canvas_id=canvas_id,
                                                                      thread_id=thread_id)
            if expected_version is not None and canvas.version != expected_version:
                raise Conflict(f"the canvas is at version {canvas.version}, not {expected_version}")
            operation, target, value, kind, position, restores = plan(canvas)
            after, old, at = applied(canvas, operation, target, value, kind, position)
            now = now_ms()
            after = msgspec.structs.replace(after, version=canvas.version + 1, updated_at=now, updated_by=by)
            body = _encode(after)
            if len(body) > MAX_CANVAS_BYTES:
                raise TooLarge(f"a canvas holds at most {MAX_CANVAS_BYTES} bytes")
            new = next((e for e in after.elements if e.id == target), None)
            snippet = Snippet(
                snippet_id=new_snippet_id(thread_id), thread_id=thread_id, kind="canvas", target=target,
                content="", summary=summary, message_id=message_id, user_id=caller, created_at=now,
                **msgspec.structs.asdict(Edit(
                    document=canvas_id, operation="restore" if restores else operation,
                    before=msgspec.to_builtins(old) if old is not None else None,
                    after=msgspec.to_builtins(new) if new is not None else None, doc_version=canvas.version,
                    by=by, position=at, restores=restores)))
            try:
                with redis_errors():
                    version, snippet_id = await self._scripts.run(
                        CANVAS_WRITE, [*SnippetStore.keys_of(thread_id), keys.canvases(thread_id)],
                        [keys.thread_channel(thread_id), caller, canvas_id, canvas.version, body,
                         snippet.snippet_id, _encode(snippet), thread_id],
                        in_thread(guard, thread_id))
            except Conflict:
                if expected_version is not None:
                    raise
                await asyncio.sleep(random.random() * 0.01)  # another edit came first: edit the newest version
                continue
            if snippet_id.decode() != snippet.snippet_id:  # a resent request: the first attempt's outcome
                snippet = await self._snippets.get(snippet_id.decode())
                current = await self.find(thread_id, canvas_id)
                return int(version), current or after, snippet
            return int(version), after, snippet
        raise Conflict("the canvas kept changing; try again")
