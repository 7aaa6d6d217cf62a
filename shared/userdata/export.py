"""A user's data as a downloadable archive (the right of access): a tar of JSON lines and files,
made as it is sent, page by page, so memory stays bounded whatever the user holds.

    threads.jsonl                       the threads in their list (their own and shared with them)
    threads/<threadId>/messages-N.jsonl their own threads' messages; in others' threads their messages
    threads/<threadId>/snippets-N.jsonl the snippets they may see there (all of their own threads')
    files.jsonl, files/<fileId>/<name>  their files' records and bytes (streamed from the blob store)
    documents.jsonl                     their RAG namespace's documents; of each, documents/<key> (its
                                        bytes, until indexed) or documents/<key>.chunks-N.jsonl (its text)
    workflows.jsonl                     their workflow runs (without steps)
    usage.jsonl                         their usage ledger (one entry per model call)
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec

from threadline.shared.errors import NotFound
from threadline.shared.runtime import Runtime

PAGE = 100
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


async def export_user(rt: Runtime, user_id: str) -> AsyncIterator[bytes]:
    """The archive of ``user_id``'s data, piece by piece (a tar stream)."""
    store = rt.store
    thread_ids = await store.threads.all_ids(user_id)
    threads = []
    for at in range(0, len(thread_ids), PAGE):
        for tid in thread_ids[at:at + PAGE]:
            try:
                threads.append(await store.threads.get(tid))
            except NotFound:
                continue
        yield _member("threads.jsonl" if at == 0 else f"threads-{at // PAGE}.jsonl", _lines(threads))
        threads = []
    for tid in thread_ids:
        try:
            owner = (await store.threads.get(tid)).user_id
        except NotFound:
            continue
        cursor, n = None, 0
        while True:
            _, page = await store.messages.list(tid, None, num_items=PAGE, cursor=cursor)
            mine = [m for m in page.page if owner == user_id or m.user_id == user_id]
            if mine:
                n += 1
                yield _member(f"threads/{tid}/messages-{n}.jsonl", _lines(reversed(mine)))
            if page.is_done:
                break
            cursor = page.continue_cursor
        cursor, n = None, 0
        while True:
            _, snippets = await store.snippets.list(tid, None, num_items=PAGE, cursor=cursor)
            mine_s = [s for s in snippets.page if owner == user_id or s.user_id == user_id]
            if mine_s:
                n += 1
                yield _member(f"threads/{tid}/snippets-{n}.jsonl", _lines(mine_s))
            if snippets.is_done:
                break
            cursor = snippets.continue_cursor
    cursor = None
    while True:
        files = await rt.files.list(user_id, num_items=PAGE, cursor=cursor)
        yield _member("files.jsonl" if cursor is None else f"files-{cursor}.jsonl", _lines(files.page))
        for record in files.page:
            yield _header(f"files/{record.file_id}/{_safe(record.name)}", record.size)
            async for chunk in await rt.files.open(record):
                yield chunk
            yield _padding(record.size)
        if files.is_done:
            break
        cursor = files.continue_cursor
    namespace, cursor = f"user:{user_id}", None
    while True:
        _, docs = await store.documents.page(namespace, num_items=PAGE, cursor=cursor)
        yield _member("documents.jsonl" if cursor is None else f"documents-{cursor}.jsonl", _lines(docs.page))
        for doc in docs.page:
            content = await store.documents.content(namespace, doc.key)  # (bounded: RAG_MAX_BYTES)
            if content is not None:  # (kept until it is indexed)
                yield _member(f"documents/{_safe(doc.key)}", content)
            for first in range(0, doc.chunks if doc.ready_version else 0, PAGE * 5):
                (chunks,) = await store.documents.chunk_windows([(doc, first, first + PAGE * 5 - 1)])
                yield _member(f"documents/{_safe(doc.key)}.chunks-{first // (PAGE * 5) + 1}.jsonl",
                              _lines({"heading": c.heading, "text": c.text} for _, c in sorted(chunks.items())))
        if docs.is_done:
            break
        cursor = docs.continue_cursor
    cursor = None
    while True:
        _, runs = await rt.workflows.runs(user_id, num_items=PAGE, cursor=cursor)
        yield _member("workflows.jsonl" if cursor is None else f"workflows-{cursor}.jsonl", _lines(runs.page))
        if runs.is_done:
            break
        cursor = runs.continue_cursor
    n = 0
    async for entries in rt.usage.pages(user_id, PAGE * 10):
        n += 1
        yield _member("usage.jsonl" if n == 1 else f"usage-{n}.jsonl", _lines(entries))
    yield b"\0" * (2 * _BLOCK)  # the end of the archive
