"""Uploaded files: records in Redis, bytes in the blob store, counts kept exact.

A file record (id, owner, name, media type, size, sha256, created) lives in the file's own keys
(``keys.file``), in the partition of its id; its bytes in the blob store under their sha256,
shared by every record of the same content (``keys.blob_files`` lists the records holding a
content, in the partition of its hash). The owner's list of files is in the owner's partition.
A record's create and drop are one atomic step each in the file's slot, which records the
follow-ups to its content and its owner's list in its partition's outbox (shared.storage.outbox):
done at once by the writer, by the sweeper if the writer died; each is idempotent.

Messages reference files by id (shared.files.refs): a file is pinned before a message referencing
it is saved, and its count of references changes by follow-ups of the message's write. A file no
message references is idle (``keys.files_idle``); the vacuum drops those idle longer than the grace
period. A content no record holds is doomed; its bytes are deleted by whoever drops its last
record, or by the vacuum. An upload of content whose bytes are being deleted waits for the deletion.
An upload dooms the content it is about to store a grace period ahead, until its record takes it: the
bytes of an upload that died before its record are deleted by the vacuum after that.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.config import Settings
from threadline.shared.errors import BadRequest, Conflict, NotFound, Unavailable
from threadline.shared.faults import crash_point
from threadline.shared.files.blobs import Blobs
from threadline.shared.files.refs import file_ids
from threadline.shared.files.sniff import IMAGE_TYPES, check_upload, clean_name
from threadline.shared.ids import new_file_id
from threadline.shared.records import FilePart, ImagePart, Part
from threadline.shared.storage import outbox, partitions
from threadline.shared.storage.client import Client, redis_errors, text, texts
from threadline.shared.storage.outbox import Outbox
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Scripts, lua

BLOB_CLAIM = lua(__file__, "blob_claim")
BLOB_GONE = lua(__file__, "blob_gone")
BLOB_RELEASE = lua(__file__, "blob_release")
BLOB_TAKE = lua(__file__, "blob_take")
FILE_CREATE = lua(__file__, "file_create")
FILE_DROP = lua(__file__, "file_drop")

log = logging.getLogger(__name__)

DELETING_STALE_MS = 60_000  # a content deletion older than this was abandoned (its vacuum died)
GONE_MS = 86_400_000  # a record that let its content go is remembered this long (late follow-ups)


class FileRecord(msgspec.Struct, rename="camel", kw_only=True):
    file_id: str
    user_id: str
    name: str
    media_type: str
    size: int
    hash: str
    created_at: int
    refs: int = 0  # messages referencing it (read with the record, not stored in it)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(FileRecord).decode


class FileStore:
    def __init__(self, redis: Client, scripts: Scripts, box: Outbox, blobs: Blobs, *, max_bytes: int,
                 allowed: frozenset[str], grace_s: float = 3600) -> None:
        self._redis = redis
        self.grace_ms = int(grace_s * 1000)  # bytes an upload stored wait this long for their record
        self._scripts = scripts
        self._outbox = box
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.allowed = allowed

    @classmethod
    def from_settings(cls, redis: Client, scripts: Scripts, box: Outbox, settings: Settings) -> FileStore:
        return cls(redis, scripts, box, Blobs.from_settings(settings), max_bytes=settings.files_max_bytes,
                   allowed=frozenset(t.strip() for t in settings.files_types.split(",") if t.strip()),
                   grace_s=settings.files_grace_s)

    async def attach(self, user_id: str, parts: Sequence[Part]) -> list[Part]:
        """``parts`` with their files' type and name taken from the file records (never from the
        client); NotFound for a file that is not the user's, BadRequest for a malformed part."""
        records = await self.many(file_ids(parts))
        out: list[Part] = []
        for p in parts:
            if isinstance(p, FilePart | ImagePart):
                if not p.file_id:
                    if not p.url.startswith(("https://", "http://", "data:")):
                        raise BadRequest(f"a {p.type_name} part needs a fileId (an upload) or an http(s) url")
                    out.append(p)
                    continue
                record = records.get(p.file_id)
                if record is None or record.user_id != user_id:
                    raise NotFound(f"file {p.file_id} not found")
                if isinstance(p, ImagePart) and record.media_type not in IMAGE_TYPES:
                    raise BadRequest(f"file {p.file_id} is {record.media_type}, not an image: send it as a file part")
                cls = ImagePart if isinstance(p, ImagePart) else FilePart
                out.append(cls(file_id=record.file_id, mime_type=record.media_type, filename=record.name))
            else:
                out.append(p)
        return out

    async def upload(self, user_id: str, name: str, data: bytes) -> FileRecord:
        """Keep ``data`` as a new file of ``user_id`` (its type read from the bytes).

        The bytes are stored first (a crash then leaves bytes no record names, never a record
        without its bytes, and the vacuum deletes them a grace period later: they were doomed
        before they were stored), then the record; its content takes it at once (no longer
        doomed), waiting while the same content's bytes are being deleted (and storing them again after).
        """
        media_type = check_upload(data, name, max_bytes=self.max_bytes, allowed=self.allowed)
        digest = hashlib.sha256(data).hexdigest()
        record = FileRecord(file_id=new_file_id(), user_id=user_id, name=clean_name(name), media_type=media_type,
                            size=len(data), hash=digest, created_at=now_ms())
        if not await self.blobs.exists(digest):
            with redis_errors():  # (a content doomed sooner keeps its time: its deletion is waited for below)
                await self._redis.zadd(keys.blobs_doomed(digest), {digest: now_ms() + self.grace_ms}, nx=True)
            await self.blobs.put(digest, data, media_type)
            crash_point("upload:stored")  # fault tests: the uploader dies with the bytes stored, no record
        home = keys.outbox(record.file_id)
        with redis_errors():
            take, listed = await self._scripts.run(
                FILE_CREATE, [keys.file(record.file_id), keys.files_idle(record.file_id), home],
                [record.file_id, _encode(record), digest, user_id, record.created_at, now_ms()])
        await self._outbox.follow_now(home, listed)
        waited = False
        for _ in range(200):  # the same content being deleted: its deletion ends within moments
            if await _take(self._scripts, digest, record.file_id) >= 0:
                break
            waited = True
            await asyncio.sleep(0.05)
        else:
            await self._drop(record, cutoff=now_ms() + 1)
            raise Unavailable("the same content is being deleted; try again")
        with redis_errors():
            await self._redis.zrem(home, take)
        try:
            if waited and not await self.blobs.exists(digest):
                await self.blobs.put(digest, data, media_type)
        except Unavailable:
            await self._drop(record, cutoff=now_ms() + 1)
            raise
        return record

    async def get(self, file_id: str, user_id: str | None) -> FileRecord:
        """The file (NotFound when it is not there, or is another user's)."""
        found = (await self.many([file_id])).get(file_id)
        if found is None or (user_id is not None and found.user_id != user_id):
            raise NotFound(f"file {file_id} not found")
        return found

    async def many(self, file_ids: Sequence[str]) -> dict[str, FileRecord]:
        if not file_ids:
            return {}
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for file_id in file_ids:
                    pipe.hmget(keys.file(file_id), ["rec", "refs"])
                replies = await pipe.execute()
        out = {}
        for body, count in replies:
            if body is not None:
                record = _decode(body)
                record.refs = int(count or 0)
                out[record.file_id] = record
        return out

    async def list(self, user_id: str, *, num_items: int = 50, cursor: str | None = None) -> Page[FileRecord]:
        """The user's files, newest first (a dropped file the list still named is taken out of it)."""
        with redis_errors():
            hits = await self._redis.zrevrangebyscore(keys.user_files(user_id), score_bound(cursor), "-inf",
                                                      start=0, num=num_items + 1, withscores=True)
        more = len(hits) > num_items
        hits = hits[:num_items]
        ids = texts(h[0] for h in hits)
        found = await self.many(ids)
        if gone := [i for i in ids if i not in found]:
            with redis_errors():
                await self._redis.zrem(keys.user_files(user_id), *gone)
        last = str(int(hits[-1][1])) if hits else ""
        return Page(page=[found[i] for i in ids if i in found], continue_cursor=last if more else "", is_done=not more)

    async def read(self, record: FileRecord, start: int = 0, end: int | None = None) -> bytes:
        return await self.blobs.read(record.hash, start, end)

    async def open(self, record: FileRecord, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The content as chunks read as they are consumed (see ``Blobs.open``)."""
        return await self.blobs.open(record.hash, start, end)

    async def delete(self, file_id: str, user_id: str) -> None:
        """Delete a file no message references (Conflict while one does, or is being saved)."""
        record = await self.get(file_id, user_id)
        if record.refs:
            raise Conflict(f"file {file_id} is referenced by {record.refs} message(s); delete those first")
        if not await self._drop(record, cutoff=now_ms() + 1):
            raise Conflict(f"file {file_id} was just referenced by a message")

    async def vacuum(self, grace_s: float, batch: int = 500) -> int:
        """Drop the files no message has referenced for ``grace_s``, then delete the bytes of the
        contents no record holds (a dropper that died left them); returns how many files."""
        cutoff = now_ms() - int(grace_s * 1000)
        dropped = 0
        while True:
            with redis_errors():
                found = await partitions.due_in(self._scripts, keys.FILES_IDLE, cutoff, batch)
            records = await self.many([text(f) for _, f in found])
            for home, raw in found:
                record = records.get(text(raw))
                if record is None:  # no record (a crashed upload's leftovers): nothing to keep
                    with redis_errors():
                        await self._redis.zrem(home, raw)
                    continue
                dropped += await self._drop(record, cutoff)
            if len(found) < batch:
                break
        while True:
            with redis_errors():
                doomed = await partitions.due(self._scripts, keys.BLOBS_DOOMED, now_ms(), batch)
            for digest in doomed:
                await self._delete_bytes(text(digest))
            if len(doomed) < batch:
                return dropped

    async def _drop(self, record: FileRecord, cutoff: int) -> bool:
        """Drop ``record`` if unreferenced, not pinned and idle since before ``cutoff``; its bytes
        with the last record of its content."""
        fid = record.file_id
        home = keys.outbox(fid)
        with redis_errors():
            out = await self._scripts.run(
                FILE_DROP, [keys.file(fid), keys.file_refs(fid), keys.files_idle(fid), home], [fid, cutoff, now_ms()])
        if not out:
            return False
        release, listed = out
        await self._outbox.follow_all(home, [listed, release])
        await self._delete_bytes(record.hash)
        return True

    async def _delete_bytes(self, digest: str) -> None:
        """Delete a doomed content's bytes, unless a record holds it again."""
        with redis_errors():
            if not await self._scripts.run(
                    BLOB_CLAIM, [keys.blob(digest), keys.blob_files(digest), keys.blobs_doomed(digest)],
                    [digest, now_ms()]):
                return
        await self.blobs.delete(digest)
        with redis_errors():
            await self._scripts.run(BLOB_GONE, [keys.blob(digest)], [])
        log.info("the content %s is deleted", digest[:12])


async def _take(scripts: Scripts, digest: str, file_id: str) -> int:
    """The record ``file_id`` holds the content ``digest``: how many hold it, or -1 while its bytes
    are being deleted."""
    with redis_errors():
        return int(await scripts.run(
            BLOB_TAKE, [keys.blob(digest), keys.blob_files(digest), keys.blob_gone(digest), keys.blobs_doomed(digest)],
            [file_id, digest, now_ms(), DELETING_STALE_MS]))


@outbox.handler("files.blob")
async def _follow_blob(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    op, digest, file_id = args
    if op == "take":
        if await _take(scripts, digest, file_id) < 0:
            raise Unavailable("the content is being deleted")  # the sweeper tries again
        return
    with redis_errors():
        await scripts.run(BLOB_RELEASE, [keys.blob_files(digest), keys.blob_gone(digest), keys.blobs_doomed(digest)],
                          [file_id, digest, now_ms(), GONE_MS])


@outbox.handler("files.user")
async def _follow_user(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    op, user_id, file_id, created_at = args
    with redis_errors():
        if op == "add":
            await redis.zadd(keys.user_files(user_id), {file_id: int(created_at)})
        else:
            await redis.zrem(keys.user_files(user_id), file_id)
