"""A user's data as a downloadable archive (the right of access): a tar of JSON lines and files,
made as it is sent, page by page, so memory stays bounded whatever the user holds.

    threads.jsonl                       the threads in their list (their own and shared with them)
    threads/<threadId>/messages-N.jsonl their own threads' messages; in others' threads their messages
    threads/<threadId>/snippets-N.jsonl the snippets they may see there (all of their own threads')
    files.jsonl, files/<fileId>/<name>  their files' records and bytes (streamed from the blob store)
    items.jsonl                         their items in the cross-thread store (their namespace)
    documents.jsonl                     their RAG namespace's documents; of each, documents/<key> (its
                                        bytes, until indexed) or documents/<key>.chunks-N.jsonl (its text)
    workflows.jsonl                     their workflow runs (without steps)
    usage.jsonl                         their usage ledger (one entry per model call)
    working-memory.json                 their working memory with its revisions (when they have one)
    schedules.jsonl                     their schedules (when they have some)
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec

from threadline.shared.documents.store import Document
from threadline.shared.errors import NotFound
from threadline.shared.runtime import Runtime
from threadline.shared.storage.pagination import Page

PAGE = 100
T = TypeVar("T")
_BLOCK = 512
_encode = msgspec.json.Encoder().encode


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _member(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + data + _padding(len(data))


def _lines(records: Iterable[Any]) -> bytes:
    out = io.BytesIO()
    for record in records:
        out.write(_encode(record))
        out.write(b"\n")
    return out.getvalue()


def _safe(name: str) -> str:
    """A name of the user's as one path segment of the archive."""
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in name).strip(" .")
    return cleaned[:100] or "file"


async def _pages(read: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[tuple[int, Page[T]]]:
    """(1, 2, ..., each page) of a paginated read, ``read(cursor)``."""
    cursor: str | None = None
    n = 0
    while True:
        n += 1
        page = await read(cursor)
        yield n, page
        if page.is_done:
            return
        cursor = page.continue_cursor


def _second(read: Awaitable[tuple[int, Page[T]]]) -> Awaitable[Page[T]]:
    async def page() -> Page[T]:
        return (await read)[1]
    return page()


async def export_user(rt: Runtime, user_id: str) -> AsyncIterator[bytes]:
    """The archive of ``user_id``'s data, piece by piece (a tar stream)."""
    store = rt.store
    thread_ids = await store.threads.all_ids(user_id)
    for at in range(0, len(thread_ids), PAGE):
        threads = []
        for tid in thread_ids[at:at + PAGE]:
            with contextlib.suppress(NotFound):
                threads.append(await store.threads.get(tid))
        yield _member("threads.jsonl" if at == 0 else f"threads-{at // PAGE + 1}.jsonl", _lines(threads))
    for tid in thread_ids:
        async for piece in _thread(rt, tid, user_id):
            yield piece
    async for n, files in _pages(lambda c: rt.files.list(user_id, num_items=PAGE, cursor=c)):
        yield _member(_numbered("files", n), _lines(files.page))
        for record in files.page:
            yield _header(f"files/{record.file_id}/{_safe(record.name)}", record.size)
            async for chunk in await rt.files.open(record):
                yield chunk
            yield _padding(record.size)
    namespace = f"user:{user_id}"
    async for n, items in _pages(lambda c: _second(store.items.page(namespace, num_items=PAGE, cursor=c))):
        yield _member(_numbered("items", n), _lines(items.page))
    async for n, docs in _pages(lambda c: _second(store.documents.page(namespace, num_items=PAGE, cursor=c))):
        yield _member(_numbered("documents", n), _lines(docs.page))
        for doc in docs.page:
            async for piece in _document(rt, doc):
                yield piece
    async for n, runs in _pages(lambda c: _second(rt.workflows.runs(user_id, num_items=PAGE, cursor=c))):
        yield _member(_numbered("workflows", n), _lines(runs.page))
    n = 0
    async for entries in rt.usage.pages(user_id, PAGE * 10):
        n += 1
        yield _member(_numbered("usage", n), _lines(entries))
    memory = await store.working_memory.read(user_id=user_id, history=50)
    if memory.version:
        yield _member("working-memory.json", msgspec.json.encode(memory))
    _, schedules = await rt.schedules.of_user(user_id)
    if schedules:
        yield _member("schedules.jsonl", _lines(schedules))
    yield b"\0" * (2 * _BLOCK)  # the end of the archive


def _numbered(name: str, n: int) -> str:
    return f"{name}.jsonl" if n == 1 else f"{name}-{n}.jsonl"


async def _thread(rt: Runtime, thread_id: str, user_id: str) -> AsyncIterator[bytes]:
    """Of a thread of theirs everything; of another's, what they wrote (and its replies)."""
    try:
        owner = (await rt.store.threads.get(thread_id)).user_id
    except NotFound:
        return
    n = 0
    async for _, page in _pages(lambda c: _second(rt.store.messages.list(thread_id, None, num_items=PAGE, cursor=c))):
        if mine := [m for m in page.page if owner == user_id or m.user_id == user_id]:
            n += 1
            yield _member(f"threads/{thread_id}/messages-{n}.jsonl", _lines(reversed(mine)))
    n = 0
    async for hidden in rt.store.messages.off_branch(thread_id):  # earlier versions of edited messages
        if mine := [m for m in hidden if owner == user_id or m.user_id == user_id]:
            n += 1
            yield _member(f"threads/{thread_id}/other-branches-{n}.jsonl", _lines(mine))
    n = 0
    async for _, snippets in _pages(lambda c: _second(rt.store.snippets.list(thread_id, None, num_items=PAGE,
                                                                              cursor=c))):
        if kept := [s for s in snippets.page if owner == user_id or s.user_id == user_id]:
            n += 1
            yield _member(f"threads/{thread_id}/snippets-{n}.jsonl", _lines(kept))


async def _document(rt: Runtime, doc: Document) -> AsyncIterator[bytes]:
    """A document's bytes while they are kept (until indexed), and its indexed text as chunks."""
    content = await rt.store.documents.content(doc.namespace, doc.key)  # (bounded: RAG_MAX_BYTES)
    if content is not None:
        yield _member(f"documents/{_safe(doc.key)}", content)
    size = PAGE * 5
    for first in range(0, doc.chunks if doc.ready_version else 0, size):
        (chunks,) = await rt.store.documents.chunk_windows([(doc, first, first + size - 1)])
        yield _member(f"documents/{_safe(doc.key)}.chunks-{first // size + 1}.jsonl",
                      _lines({"heading": c.heading, "text": c.text} for _, c in sorted(chunks.items())))
