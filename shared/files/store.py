"""Uploaded files: records in Redis, bytes in the blob store, counts kept exact.

A file record (id, owner, name, media type, size, sha256, created) lives in the
``FILES`` hash; its bytes in the blob store under their sha256, shared by every
record of the same content (``FILE_BLOBS`` counts the records per content). Messages
reference files by id; the counts change in the same Lua step as the messages
(shared.files.refs). A file no message references is in ``FILES_IDLE``; the vacuum
drops those idle longer than the grace period, and a content's bytes with its last
record. A save that references a file in the same step as the vacuum drops it
cannot both succeed: each is one atomic script, and the save fails on a missing
file. An upload of content whose bytes are being deleted waits for the deletion.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.config import Settings
from threadline.shared.errors import BadRequest, Conflict, NotFound, Unavailable
from threadline.shared.files.blobs import Blobs
from threadline.shared.files.refs import file_ids
from threadline.shared.files.sniff import IMAGE_TYPES, check_upload, clean_name
from threadline.shared.ids import new_file_id
from threadline.shared.records import FilePart, ImagePart, Part
from threadline.shared.storage.client import Client, redis_errors, text, texts
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Scripts, lua

FILE_BLOB_GONE = lua(__file__, "file_blob_gone")
FILE_CREATE = lua(__file__, "file_create")
FILE_DROP = lua(__file__, "file_drop")

log = logging.getLogger(__name__)

DELETING_STALE_MS = 60_000  # a content deletion older than this was abandoned (its vacuum died)


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
    def __init__(self, redis: Client, scripts: Scripts, blobs: Blobs, *, max_bytes: int,
                 allowed: frozenset[str]) -> None:
        self._redis = redis
        self._scripts = scripts
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.allowed = allowed

    @classmethod
    def from_settings(cls, redis: Client, scripts: Scripts, settings: Settings) -> FileStore:
        return cls(redis, scripts, Blobs.from_settings(settings), max_bytes=settings.files_max_bytes,
                   allowed=frozenset(t.strip() for t in settings.files_types.split(",") if t.strip()))

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
        """Keep ``data`` as a new file of ``user_id`` (its type read from the bytes)."""
        media_type = check_upload(data, name, max_bytes=self.max_bytes, allowed=self.allowed)
        digest = hashlib.sha256(data).hexdigest()
        record = FileRecord(file_id=new_file_id(), user_id=user_id, name=clean_name(name), media_type=media_type,
                            size=len(data), hash=digest, created_at=now_ms())
        for _ in range(200):  # the same content being deleted: its deletion ends within moments
            with redis_errors():
                count = int(await self._scripts.run(
                    FILE_CREATE, [keys.FILES, keys.FILES_IDLE, keys.FILE_BLOBS, keys.FILE_BLOBS_DELETING,
                                    keys.user_files(user_id)],
                    [record.file_id, _encode(record), digest, record.created_at, DELETING_STALE_MS]))
            if count >= 0:
                break
            await asyncio.sleep(0.05)
            record.created_at = now_ms()
        else:
            raise Unavailable("the same content is being deleted; try again")
        try:
            if count == 1 or not await self.blobs.exists(digest):
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
                pipe.hmget(keys.FILES, list(file_ids))
                pipe.hmget(keys.FILE_REFS, list(file_ids))
                bodies, refs = await pipe.execute()
        out = {}
        for body, count in zip(bodies, refs, strict=True):
            if body is not None:
                record = _decode(body)
                record.refs = int(count or 0)
                out[record.file_id] = record
        return out

    async def list(self, user_id: str, *, num_items: int = 50, cursor: str | None = None) -> Page[FileRecord]:
        """The user's files, newest first."""
        with redis_errors():
            hits = await self._redis.zrevrangebyscore(keys.user_files(user_id), score_bound(cursor), "-inf",
                                                      start=0, num=num_items + 1, withscores=True)
        more = len(hits) > num_items
        hits = hits[:num_items]
        found = await self.many(texts(h[0] for h in hits))
        page = [found[i] for i in texts(h[0] for h in hits) if i in found]
        last = str(int(hits[-1][1])) if hits else ""
        return Page(page=page, continue_cursor=last if more else "", is_done=not more)

    async def read(self, record: FileRecord, start: int = 0, end: int | None = None) -> bytes:
        return await self.blobs.read(record.hash, start, end)

    async def open(self, record: FileRecord, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The content as chunks read as they are consumed (see ``Blobs.open``)."""
        return await self.blobs.open(record.hash, start, end)

    async def delete(self, file_id: str, user_id: str) -> None:
        """Delete a file no message references (Conflict while one does)."""
        record = await self.get(file_id, user_id)
        if record.refs:
            raise Conflict(f"file {file_id} is referenced by {record.refs} message(s); delete those first")
        if not await self._drop(record, cutoff=now_ms() + 1):
            raise Conflict(f"file {file_id} was just referenced by a message")

    async def vacuum(self, grace_s: float, batch: int = 500) -> int:
        """Drop the files no message has referenced for ``grace_s``; returns how many."""
        cutoff = now_ms() - int(grace_s * 1000)
        dropped = 0
        while True:
            with redis_errors():
                ids = texts(await self._redis.zrangebyscore(keys.FILES_IDLE, "-inf", cutoff, start=0, num=batch))
            if not ids:
                return dropped
            records = await self.many(ids)
            for file_id in ids:
                record = records.get(file_id)
                if record is None:  # no record (a crashed upload's leftovers): nothing to keep
                    with redis_errors():
                        await self._redis.zrem(keys.FILES_IDLE, file_id)
                    continue
                dropped += await self._drop(record, cutoff)
            if len(ids) < batch:
                return dropped

    async def _drop(self, record: FileRecord, cutoff: int) -> bool:
        """Drop ``record`` if unreferenced and idle since before ``cutoff``; its bytes with the last record."""
        with redis_errors():
            out = await self._scripts.run(
                FILE_DROP, [keys.FILES, keys.FILE_REFS, keys.FILES_IDLE, keys.FILE_BLOBS,
                              keys.FILE_BLOBS_DELETING, keys.user_files(record.user_id)],
                [record.file_id, cutoff, now_ms()])
        if isinstance(out, int):
            return out == 1
        digest = text(out)
        await self.blobs.delete(digest)
        with redis_errors():
            await self._scripts.run(FILE_BLOB_GONE, [keys.FILE_BLOBS, keys.FILE_BLOBS_DELETING], [digest])
        log.info("file %s dropped with its content %s", record.file_id, digest[:12])
        return True
