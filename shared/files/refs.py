"""Which files a message references, and the follow-ups that carry it to the files.

A thread's file index (``keys.thread_files``: messageId -> file ids) changes in the same atomic
step as the thread's messages (``lua/refs.lua``, included by every script that writes messages).
A file lives in a slot of its own, so each reference gained or lost is a follow-up recorded in
the thread's outbox in that same step and done in the file's slot (``file_ref.lua``): the writer
does it at once, the outbox sweeper if the writer died. Follow-ups of one message carry growing
versions, so the last one wins in whatever order they are done.

A reference cannot be checked in the thread's step, so it is checked just before (``pin``): the
file must be there and be the thread owner's; it is then pinned (no delete, no vacuum) long
enough for the reference to reach it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.errors import NotFound
from threadline.shared.records import FilePart, ImagePart, Message, Part
from threadline.shared.storage import outbox
from threadline.shared.storage.client import Client, redis_errors
from threadline.shared.storage.scripts import Scripts, lua

FILE_PIN = lua(__file__, "file_pin")
FILE_REF = lua(__file__, "file_ref")
PIN_MS = 120_000  # a pinned file is kept this long at least (its reference arrives within ms)


def file_ids(parts: Iterable[Part]) -> list[str]:
    """The ids of the stored files ``parts`` reference, once each, in order."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, FilePart | ImagePart) and p.file_id and p.file_id not in out:
            out.append(p.file_id)
    return out


def refs_arg(message: Message) -> str:
    """A message's file ids as its script argument."""
    return " ".join(file_ids(message.parts))


class FileRefs:
    """The thread side of file references: pins before a write, follow-ups after it."""

    def __init__(self, redis: Client, scripts: Scripts, box: outbox.Outbox) -> None:
        self._redis = redis
        self._scripts = scripts
        self._outbox = box

    @staticmethod
    def keys(thread_id: str) -> list[str]:
        """The keys a script including lua/refs.lua takes besides the thread: the thread's file
        index and its outbox."""
        return [keys.thread_files(thread_id), keys.outbox(thread_id)]

    async def pin(self, thread_id: str, messages: Iterable[Message], *,
                  release: bool = False) -> set[tuple[str, str]]:
        """Pin each file each of ``messages`` of ``thread_id`` is about to reference; the
        (messageId, fileId) pairs whose file is not there or not the message's user's (which must
        not be referenced: in a shared thread each writer attaches their own files). ``release``:
        take the pins away (a save that failed)."""
        owners = {m.message_id: m.user_id for m in messages}
        pairs = [(m.message_id, f) for m in messages for f in file_ids(m.parts)]
        if not pairs:
            return set()
        now = now_ms()
        until = 0 if release else now + PIN_MS
        with redis_errors():
            results = await self._scripts.run_all(
                [(FILE_PIN, [keys.file(f), keys.files_idle(f)], [owners[mid], until, now, f, f"{thread_id} {mid}"])
                 for mid, f in pairs])
        for result in results:
            if isinstance(result, Exception):
                with redis_errors():
                    raise result
        return {pair for pair, ok in zip(pairs, results, strict=True) if not ok}

    @contextlib.asynccontextmanager
    async def pinned(self, thread_id: str, messages: Sequence[Message]) -> AsyncIterator[None]:
        """``pin`` the files of ``messages`` for the write in the block (NotFound naming the first
        that is missing); the pins are taken away again if the write fails."""
        missing = await self.pin(thread_id, messages)
        try:
            if missing:
                raise NotFound(f"file {min(missing)[1]} not found")
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # (else they run out by themselves)
                await self.pin(thread_id, messages, release=True)
            raise

    async def follow(self, thread_id: str, entries: Iterable[object]) -> None:
        """Do the follow-ups a write of ``thread_id`` returned (a failure is left to the sweeper)."""
        await self._outbox.follow_all(keys.outbox(thread_id), entries)


@outbox.handler("files.ref")
async def _ref(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    file_id, thread_id, message_id, version, on = args
    with redis_errors():
        await scripts.run(FILE_REF, [keys.file(file_id), keys.file_refs(file_id), keys.files_idle(file_id)],
                          [f"{thread_id} {message_id}", version, on, now_ms(), file_id])
