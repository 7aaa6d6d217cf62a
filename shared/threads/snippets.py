"""Thread snippets: memory beside the messages (e.g. edits made on a canvas).

A snippet is kept as a reference point for later edits: what kind it is, what
was edited (target), the content, a summary and the message it came from. They
are listed live, embedded and searched like messages, and reach the context.
"""

from __future__ import annotations

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import NotFound
from threadline.shared.ids import SNIPPET, new_child_id, thread_of
from threadline.shared.storage.client import Client, redis_errors
from threadline.shared.storage.guard import Guard, in_thread
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Scripts, lua
from threadline.shared.threads.threads import ThreadStore

SNIPPET_WRITE = lua(__file__, "snippet_write")


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

    @property
    def text(self) -> str:
        """What is embedded and shown to the model."""
        head = f"[{self.kind}{' on ' + self.target if self.target else ''}]"
        return f"{head} {self.summary + ': ' if self.summary else ''}{self.content}"


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

    def _keys(self, thread_id: str) -> list[str]:
        return [keys.thread(thread_id), keys.snippets(thread_id), keys.snippet_index(thread_id),
                keys.vector_ops(thread_id)]

    async def add(self, thread_id: str, user_id: str, *, kind: str, content: str, target: str | None = None,
                  summary: str | None = None, message_id: str | None = None,
                  guard: Guard | None = None) -> tuple[int, Snippet]:
        snippet = Snippet(snippet_id=new_snippet_id(thread_id), thread_id=thread_id, kind=kind, content=content,
                          target=target, summary=summary, message_id=message_id, user_id=user_id,
                          created_at=now_ms())
        with redis_errors():
            version, _, snippet_id = await self._scripts.run(
                SNIPPET_WRITE, self._keys(thread_id),
                [keys.thread_channel(thread_id), snippet.snippet_id, _encode(snippet), user_id, thread_id],
                in_thread(guard, thread_id))
        snippet.snippet_id = snippet_id.decode()
        return int(version), snippet

    async def delete(self, snippet_id: str, user_id: str | None,
                     guard: Guard | None = None) -> tuple[int, bool]:
        thread_id = thread_of_snippet(snippet_id)
        with redis_errors():
            version, changed, _ = await self._scripts.run(
                SNIPPET_WRITE, self._keys(thread_id),
                [keys.thread_channel(thread_id), snippet_id, "", user_id or "", thread_id],
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
                   cursor: str | None = None) -> tuple[int, Page[Snippet]]:
        """(thread version, snippets newest first)."""
        version, _ = await self._threads.get_versioned(thread_id, user_id)
        with redis_errors():
            hits = await self._redis.zrevrangebyscore(keys.snippet_index(thread_id), score_bound(cursor), "-inf",
                                                      start=0, num=num_items + 1, withscores=True)
            more = len(hits) > num_items
            hits = hits[:num_items]
            bodies = await self._redis.hmget(keys.snippets(thread_id), [h[0] for h in hits]) if hits else []
        page = [_decode(b) for b in bodies if b is not None]
        nxt = str(int(hits[-1][1])) if hits else (cursor or "")
        return version, Page(page=page, continue_cursor=nxt, is_done=not more)

    async def count(self, thread_id: str) -> int:
        with redis_errors():
            return int(await self._redis.zcard(keys.snippet_index(thread_id)))

    async def recent(self, thread_id: str, count: int) -> Snippets:
        _, page = await self.list(thread_id, None, num_items=max(1, min(count, 100)))
        return page.page[:count]

