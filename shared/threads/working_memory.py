"""Working memory: a short document an agent reads on every reply and keeps current itself, of a user
(across all their threads) or of one thread.

It is Markdown in sections (``## Preferences``); the agent changes one section at a time (``edit``:
replace, append, forget), the user the whole text. Every write keeps a revision (who wrote it, what it
did, the text), the latest HISTORY of them, and is told on the memory's channel (a live query)."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest, Conflict
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.scripts import Scripts, lua

WORKING_MEMORY_WRITE = lua(__file__, "working_memory_write")

MAX_CHARS = 8000
HISTORY = 50
Op = Literal["replace", "append", "forget", "set"]
_HEADING = re.compile(r"^## +(.+?)\s*$", re.MULTILINE)


class Revision(msgspec.Struct, rename="camel", kw_only=True):
    version: int
    at: int
    by: str
    op: str
    text: str


class WorkingMemoryView(msgspec.Struct, rename="camel", kw_only=True):
    scope: Literal["user", "thread"]
    text: str
    version: int
    updated_at: int | None = None
    updated_by: str | None = None
    history: list[Revision] = msgspec.field(default_factory=list)


def edited(doc: str, op: Op, section: str, content: str = "") -> str:
    """``doc`` with one section replaced, appended to or forgotten (a section missing is added at the
    end; forgetting one that is not there changes nothing)."""
    section = section.strip()
    if not section or "\n" in section:
        raise BadRequest("a section is named by one line of text")
    parts = _HEADING.split(doc)  # [preamble, heading, body, heading, body...]
    preamble, pairs = parts[0], [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]
    at = next((i for i, (h, _) in enumerate(pairs) if h.lower() == section.lower()), None)
    body = content.strip()
    if op == "forget":
        if at is not None:
            del pairs[at]
    elif at is None:
        pairs.append((section, f"\n{body}\n"))
    elif op == "replace":
        pairs[at] = (pairs[at][0], f"\n{body}\n")
    else:
        pairs[at] = (pairs[at][0], f"{pairs[at][1].rstrip()}\n{body}\n")
    out = preamble.strip()
    for heading, text_ in pairs:
        out += f"\n\n## {heading}\n{text_.strip()}"
    return out.strip()


class WorkingMemory:
    def __init__(self, redis: Client, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def read(self, *, user_id: str, thread_id: str | None = None, history: int = 0) -> WorkingMemoryView:
        key = keys.working_memory(user_id=user_id, thread_id=thread_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(key)
                if history:
                    pipe.lrange(keys.working_memory_history(key), 0, history - 1)
                raw, *revisions = await pipe.execute()
        fields = {text(k): text(v) for k, v in raw.items()}
        return WorkingMemoryView(
            scope="thread" if thread_id else "user", text=fields.get("text", ""), version=int(fields.get("version", 0)),
            updated_at=int(fields["updatedAt"]) if "updatedAt" in fields else None,
            updated_by=fields.get("updatedBy"),
            history=[msgspec.json.decode(r, type=Revision) for r in revisions[0]] if revisions else [])

    async def write(self, doc: str, *, by: str, op: Op, user_id: str, thread_id: str | None = None,
                    expected_version: int | None = None) -> int:
        """Store ``doc`` (at most MAX_CHARS); the new version. Conflict when ``expected_version`` is given
        and the memory is no longer at it."""
        if len(doc) > MAX_CHARS:
            raise BadRequest(f"a working memory is at most {MAX_CHARS} characters (this one: {len(doc)}); "
                             "forget or shorten a section first")
        key = keys.working_memory(user_id=user_id, thread_id=thread_id)
        with redis_errors():
            return int(await self._scripts.run(
                WORKING_MEMORY_WRITE, [key, keys.working_memory_history(key)],
                [doc, by, op, now_ms(), -1 if expected_version is None else expected_version,
                 keys.working_memory_channel(key), HISTORY]))

    async def edit(self, op: Op, section: str, content: str, *, by: str, user_id: str,
                   thread_id: str | None = None) -> tuple[int, str]:
        """Change one section (read, edit, write if unchanged meanwhile, a few times); (version, text)."""
        for _ in range(5):
            now = await self.read(user_id=user_id, thread_id=thread_id)
            doc = edited(now.text, op, section, content)
            try:
                return await self.write(doc, by=by, op=op, user_id=user_id, thread_id=thread_id,
                                        expected_version=now.version), doc
            except Conflict:
                continue
        raise Conflict("the working memory kept changing; try again")


def channel(user_id: str, thread_id: str | None = None) -> str:
    """The channel a live query of this working memory listens on."""
    return keys.working_memory_channel(keys.working_memory(user_id=user_id, thread_id=thread_id))
