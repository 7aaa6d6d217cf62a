"""Thread snippets: memory beside the messages (e.g. edits made on a canvas).

A snippet is kept as a reference point for later edits: what kind it is, what
was edited (target), the content, a summary and the message it came from. They
are listed live, embedded and searched like messages, and reach the context.

A snippet about a document (``document``: a canvas's id, or any document of the
app's) is an edit: its ``operation``, the ``target`` element or range, the state
``before`` and ``after`` (or a JSON ``patch``), the document version it applied
to (``docVersion``) and its author (``by``). So "undo the last change to the
title" finds the title's edit and its earlier state in the context, and a
document's edits are listed by themselves (``list(..., document=)``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import NotFound
from threadline.shared.ids import SNIPPET, new_child_id, thread_of
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.guard import Guard, in_thread
from threadline.shared.storage.pagination import Page, parse_digits, score_bound
from threadline.shared.storage.scripts import Scripts, lua
from threadline.shared.threads.threads import ThreadStore

SNIPPET_WRITE = lua(__file__, "snippet_write")
SHOWN_STATE = 1500  # characters of a state before or after an edit shown to the model
SEP = "\x1f"  # between a document, a sequence and a snippet id in keys.snippet_documents


class Snippet(msgspec.Struct, rename="camel", kw_only=True):
    snippet_id: str
    thread_id: str
    kind: str
    content: str
    target: str | None = None
    summary: str | None = None
    message_id: str | None = None
    user_id: str = ""
    created_at: int = 0
    # an edit of a document (a canvas): what was done to which part, from which state to which
    document: str | None = None
    operation: str | None = None
    before: Any = None  # (None: the target did not exist before)
    after: Any = None  # (None: it does not exist after)
    patch: list[dict[str, Any]] | None = None  # RFC 6902 operations, when the edit is one
    doc_version: int | None = None  # the document's version the edit applied to
    by: str = ""  # "user:<id>" or "agent:<name>" ("": the snippet's user)
    position: int | None = None  # where the target was (or went) among the document's elements
    restores: str | None = None  # the snippet whose earlier state this edit put back

    @property
    def text(self) -> str:
        """What is embedded and shown to the model."""
        if self.document is None:
            head = f"[{self.kind}{' on ' + self.target if self.target else ''}]"
            return f"{head} {self.summary + ': ' if self.summary else ''}{self.content}"
        where = f"{self.target} of {self.document}" if self.target else self.document
        version = f" v{self.doc_version}" if self.doc_version is not None else ""
        head = (f"[{self.kind} {self.operation or 'edit'} on {where}{version} by {self.by or self.user_id}; "
                f"snippet {self.snippet_id}{'; restores ' + self.restores if self.restores else ''}]")
        state = f"before: {_shown(self.before)}; after: {_shown(self.after)}"
        if self.patch is not None:
            state += f"; patch: {_shown(self.patch)}"
        return f"{head} {self.summary + ': ' if self.summary else ''}{self.content + ' ' if self.content else ''}{state}"


def _shown(state: Any) -> str:
    if state is None:
        return "(none)"
    shown = state if isinstance(state, str) else msgspec.json.encode(state).decode()
    return shown if len(shown) <= SHOWN_STATE else shown[:SHOWN_STATE] + "…"


class Edit(msgspec.Struct, kw_only=True):
    """The fields of a snippet that make it an edit of a document."""

    document: str
    operation: str
    before: Any = None
    after: Any = None
    patch: list[dict[str, Any]] | None = None
    doc_version: int | None = None
    by: str = ""
    position: int | None = None
    restores: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Snippet).decode
Snippets = list[Snippet]  # (annotations inside SnippetStore would see its method `list`)


def new_snippet_id(thread_id: str) -> str:
    return new_child_id(thread_id, SNIPPET)


def thread_of_snippet(snippet_id: str) -> str:
    return thread_of(snippet_id, SNIPPET)


class SnippetStore:
    def __init__(self, redis: Client, scripts: Scripts, threads: ThreadStore) -> None:
        self._redis = redis
        self._scripts = scripts
        self._threads = threads

    @staticmethod
    def keys_of(thread_id: str) -> list[str]:
        """The keys a snippet's write touches (snippets.lua), in its scripts' order."""
        return [keys.thread(thread_id), keys.snippets(thread_id), keys.snippet_index(thread_id),
                keys.snippet_documents(thread_id), keys.vector_ops(thread_id)]

    async def add(self, thread_id: str, user_id: str, *, kind: str, content: str, target: str | None = None,
                  summary: str | None = None, message_id: str | None = None, guard: Guard | None = None,
                  edit: Edit | None = None) -> tuple[int, Snippet]:
        """``edit``: what makes it an edit of a document (see the module)."""
        snippet = Snippet(snippet_id=new_snippet_id(thread_id), thread_id=thread_id, kind=kind, content=content,
                          target=target, summary=summary, message_id=message_id, user_id=user_id,
                          created_at=now_ms(), **(msgspec.structs.asdict(edit) if edit is not None else {}))
        with redis_errors():
            version, _, snippet_id = await self._scripts.run(
                SNIPPET_WRITE, self.keys_of(thread_id),
                [keys.thread_channel(thread_id), snippet.snippet_id, _encode(snippet), user_id, thread_id,
                 snippet.document or ""],
                in_thread(guard, thread_id))
        snippet.snippet_id = snippet_id.decode()
        return int(version), snippet

    async def delete(self, snippet_id: str, user_id: str | None,
                     guard: Guard | None = None) -> tuple[int, bool]:
        thread_id = thread_of_snippet(snippet_id)
        with redis_errors():
            version, changed, _ = await self._scripts.run(
                SNIPPET_WRITE, self.keys_of(thread_id),
                [keys.thread_channel(thread_id), snippet_id, "", user_id or "", thread_id, ""],
                in_thread(guard, thread_id))
        return int(version), bool(changed)

    async def get(self, snippet_id: str) -> Snippet:
        thread_id = thread_of_snippet(snippet_id)
        with redis_errors():
            raw = await self._redis.hget(keys.snippets(thread_id), snippet_id)
        if raw is None:
            raise NotFound(f"snippet {snippet_id} not found")
        return _decode(raw)

    async def list(self, thread_id: str, user_id: str | None, *, num_items: int = 20,
                   cursor: str | None = None, document: str | None = None) -> tuple[int, Page[Snippet]]:
        """(thread version, snippets newest first); ``document``: that document's only."""
        version, _ = await self._threads.get_versioned(thread_id, user_id)
        if document is not None:
            return version, await self._of_document(thread_id, document, num_items, cursor)
        return version, await self._newest(thread_id, num_items, cursor)

    async def _newest(self, thread_id: str, num_items: int, cursor: str | None) -> Page[Snippet]:
        """A thread's snippets, newest first, from ``cursor`` (the time of the last one shown)."""
        with redis_errors():
            hits = await self._redis.zrevrangebyscore(keys.snippet_index(thread_id), score_bound(cursor), "-inf",
                                                      start=0, num=num_items + 1, withscores=True)
            more = len(hits) > num_items
            hits = hits[:num_items]
            bodies = await self._redis.hmget(keys.snippets(thread_id), [h[0] for h in hits]) if hits else []
        page = [_decode(b) for b in bodies if b is not None]
        nxt = str(int(hits[-1][1])) if hits else (cursor or "")
        return Page(page=page, continue_cursor=nxt, is_done=not more)

    async def _of_document(self, thread_id: str, document: str, num_items: int, cursor: str | None) -> Page[Snippet]:
        """A document's snippets, newest first; the cursor is the sequence of the last one shown."""
        start = f"{document}{SEP}".encode()
        high = b"(" + start + b"%012d" % parse_digits(cursor, "cursor") if cursor else b"[" + start + b"\xff"  # (0xff: in no UTF-8)
        with redis_errors():
            members = await self._redis.zrevrangebylex(keys.snippet_documents(thread_id), high, b"[" + start,
                                                       start=0, num=num_items + 1)
            more = len(members) > num_items
            members = members[:num_items]
            ids = [text(m).rsplit(SEP, 1)[1] for m in members]
            bodies = await self._redis.hmget(keys.snippets(thread_id), ids) if ids else []
        nxt = str(int(text(members[-1]).rsplit(SEP, 2)[1])) if members else (cursor or "")
        return Page(page=[_decode(b) for b in bodies if b is not None], continue_cursor=nxt, is_done=not more)

    async def count(self, thread_id: str) -> int:
        with redis_errors():
            return int(await self._redis.zcard(keys.snippet_index(thread_id)))

    async def recent(self, thread_id: str, count: int) -> Snippets:
        """The thread's ``count`` newest snippets (for a reply's context: no access check, no version)."""
        return (await self._newest(thread_id, max(1, min(count, 100)), None)).page[:count]

