"""Documents in namespaces: their records, contents and chunks in Redis, the store of record.

A namespace is ``user:<userId>`` (its owner only), ``team:<teamId>`` (members:
the token's ``teams`` claim) or ``global`` (everyone reads, admins write).
Adding a document by key stores it as ``pending`` with its bytes and queues
it for the index process in one atomic step; the same content again is
skipped. The index process parses, chunks and embeds it, then settles it
(``ready`` or ``failed``): the new chunks are searchable before the old
version's go, and a failed replacement leaves the last good version searchable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from threadline.shared import keys
from threadline.shared.auth import Identity
from threadline.shared.clock import now_ms
from threadline.shared.errors import BadRequest, Forbidden, NotFound
from threadline.shared.storage import partitions
from threadline.shared.storage.client import Client, as_bytes, redis_errors, text, texts
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Scripts, lua

RAG_ADD = lua(__file__, "rag_add")
RAG_DELETE = lua(__file__, "rag_delete")
RAG_SETTLE = lua(__file__, "rag_settle")

Status = Literal["pending", "ready", "failed"]
SEP = "\x1f"  # between namespace, key and version in an index op's ref (neither may hold it)


class Document(msgspec.Struct, rename="camel", kw_only=True):
    namespace: str
    key: str
    title: str = ""
    media_type: str = ""
    status: Status = "pending"
    version: int = -1  # the newest version asked for
    ready_version: int = 0  # the version whose chunks are searchable (0: none yet)
    hash: str = ""
    size: int = 0
    chunks: int = 0
    metadata: dict[str, Any] = {}
    chunk_size: int = 1000  # characters per chunk
    chunk_overlap: int = 200  # characters a chunk shares with the one before it
    error: str | None = None
    created_at: int = 0
    updated_at: int = 0
    added_by: str = ""  # the user who added this version: its embeddings are their usage ("": the app's)


class StoredChunk(msgspec.Struct, array_like=True):
    heading: str
    text: str


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Document).decode
_encode_chunk = msgspec.msgpack.Encoder().encode
_decode_chunk = msgspec.msgpack.Decoder(StoredChunk).decode



def namespace_for(identity: Identity, name: str, *, write: bool) -> str:
    """The canonical namespace ``name`` stands for, if ``identity`` may use it; Forbidden otherwise.

    ``user`` is the caller's own namespace; ``app`` is another name of ``global``.
    """
    if name in ("user", f"user:{identity.user_id}"):
        return f"user:{identity.user_id}"
    kind, _, ident = name.partition(":")
    if name in ("global", "app"):
        if write and not identity.admin:
            raise Forbidden("only admins write to the global namespace")
        return "global"
    if kind == "team" and ident:
        if ident not in identity.teams and not identity.admin:
            raise Forbidden(f"not a member of team {ident!r}")
        return name
    if kind == "user" and ident:
        if not identity.admin:
            raise Forbidden("another user's namespace")
        return name
    raise BadRequest("a namespace is `user`, `user:<id>`, `team:<id>` or `global` (`app`)")


def namespace_owner(namespace: str) -> str:
    """The user a ``user:<id>`` namespace belongs to ("" for a team's or the app's): whose usage its
    embeddings are."""
    kind, _, ident = namespace.partition(":")
    return ident if kind == "user" else ""


def agent_namespaces(names: Iterable[str], user_id: str) -> list[str]:
    """The canonical namespaces ``names`` stand for when read for ``user_id``; BadRequest for
    another user's namespace. (Agents are the app's code: which teams one reads is the app's choice;
    callers with a token go through ``namespace_for``.)"""
    out: list[str] = []
    for name in names:
        kind, _, ident = name.partition(":")
        if name in ("user", f"user:{user_id}"):
            namespace = f"user:{user_id}"
        elif name in ("global", "app"):
            namespace = "global"
        elif kind == "team" and ident:
            namespace = name
        else:
            raise BadRequest(f"an agent reads the namespaces `user`, `team:<id>` and `global` (`app`), not {name!r}")
        if namespace not in out:
            out.append(namespace)
    return out


def doc_id(namespace: str, key: str) -> str:
    """A document in any version (the payload ``docId`` of its chunks)."""
    return f"{namespace}{SEP}{key}"


def op_ref(namespace: str, key: str, version: int) -> str:
    """One version of a document (an index op's ref; the payload ``docRef`` of its chunks)."""
    return f"{doc_id(namespace, key)}{SEP}{version}"


def parse_ref(ref: str) -> tuple[str, str, int]:
    namespace, key, version = ref.split(SEP)
    return namespace, key, int(version)


class DocumentStore:
    def __init__(self, redis: Client, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def add(self, namespace: str, key: str, content: bytes, *, title: str = "", media_type: str = "",
                  metadata: dict[str, Any] | None = None, chunk_size: int = 1000,
                  chunk_overlap: int = 200, added_by: str = "") -> tuple[int, Document, bool]:
        """(namespace version, the document, skipped: the same content was there already).
        ``added_by``: the user whose usage its embeddings are."""
        metadata = metadata or {}
        digest = hashlib.sha256(b"\0".join([content, _encode(metadata), title.encode(), media_type.encode(),
                                             b"%d/%d" % (chunk_size, chunk_overlap)])).hexdigest()
        now = now_ms()
        # version, readyVersion, chunks and createdAt (-1 here) come from the current record, in the script
        doc = Document(namespace=namespace, key=key, title=title, media_type=media_type, hash=digest,
                       size=len(content), metadata=metadata, created_at=-1, updated_at=now, ready_version=-1,
                       chunk_size=chunk_size, chunk_overlap=chunk_overlap, chunks=-1, added_by=added_by)
        with redis_errors():
            version, doc_version, skipped, ready, chunks, created = await self._scripts.run(
                RAG_ADD, [keys.rag_documents(namespace), keys.rag_index(namespace), keys.rag_state(namespace),
                            keys.rag_content(namespace, key), keys.vector_ops(namespace),
                            keys.part_of(keys.RAG_NAMESPACES, namespace)],
                [keys.rag_channel(namespace), key, digest, _encode(doc), content, now,
                 doc_id(namespace, key) + SEP, namespace])
        if skipped:
            found = await self.find(namespace, key)
            assert found is not None
            return int(version), found, True
        doc.version, doc.ready_version, doc.chunks, doc.created_at = (int(doc_version), int(ready), int(chunks),
                                                                       int(created))
        return int(version), doc, False

    async def namespaces(self) -> list[str]:
        """Every namespace holding a document (for operators: the playground)."""
        with redis_errors():
            parts = await partitions.each(self._redis, keys.RAG_NAMESPACES, lambda pipe, key: pipe.smembers(key))
        return sorted({name for part in parts for name in texts(part)})

    async def find(self, namespace: str, key: str) -> Document | None:
        with redis_errors():
            raw = await self._redis.hget(keys.rag_documents(namespace), key)
        return _decode(raw) if raw is not None else None

    async def get(self, namespace: str, key: str) -> Document:
        doc = await self.find(namespace, key)
        if doc is None:
            raise NotFound(f"document {key!r} not found")
        return doc

    async def many(self, refs: list[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        """The documents named by (namespace, key), read in one round trip."""
        if not refs:
            return {}
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for namespace, key in refs:
                    pipe.hget(keys.rag_documents(namespace), key)
                raws = await pipe.execute()
        return {ref: _decode(raw) for ref, raw in zip(refs, raws, strict=True) if raw is not None}

    async def content(self, namespace: str, key: str) -> bytes | None:
        with redis_errors():
            raw = await self._redis.get(keys.rag_content(namespace, key))
        return as_bytes(raw) if raw is not None else None

    async def page(self, namespace: str, *, num_items: int = 20, cursor: str | None = None) -> tuple[int, Page[Document]]:
        """(namespace version, its documents, most recently changed first)."""
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.rag_state(namespace), "version")
                pipe.zrevrangebyscore(keys.rag_index(namespace), score_bound(cursor), "-inf",
                                      start=0, num=num_items + 1, withscores=True)
                version, hits = await pipe.execute()
            more = len(hits) > num_items
            hits = hits[:num_items]
            docs = await self._redis.hmget(keys.rag_documents(namespace), [text(h[0]) for h in hits]) if hits else []
        page = [_decode(d) for d in docs if d is not None]
        nxt = str(int(hits[-1][1])) if hits else (cursor or "")
        return int(version or 0), Page(page=page, continue_cursor=nxt, is_done=not more)

    async def delete(self, namespace: str, key: str) -> tuple[int, bool]:
        with redis_errors():
            version, deleted = await self._scripts.run(
                RAG_DELETE, [keys.rag_documents(namespace), keys.rag_index(namespace), keys.rag_state(namespace),
                               keys.rag_content(namespace, key), keys.vector_ops(namespace),
                            keys.part_of(keys.RAG_NAMESPACES, namespace)],
                [keys.rag_channel(namespace), key, doc_id(namespace, key) + SEP, namespace])
        return int(version), bool(deleted)

    # -- the index process's side ------------------------------------------------

    async def put_chunks(self, namespace: str, key: str, version: int, chunks: list[tuple[str, str]]) -> None:
        """Store a version's chunks (heading, text), before they are searchable."""
        target = keys.rag_chunks(namespace, key, version)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.execute_command("DEL", target)  # (a cluster pipeline queues no delete())
                for i in range(0, len(chunks), 500):
                    pipe.hset(target, mapping={str(n): _encode_chunk(StoredChunk(h, t))
                                               for n, (h, t) in enumerate(chunks[i:i + 500], start=i)})
                await pipe.execute()

    async def drop_chunks(self, namespace: str, key: str, versions: Iterable[int]) -> None:
        """Remove the chunks of these versions of a document, in one command."""
        names = [keys.rag_chunks(namespace, key, v) for v in versions]
        if names:
            with redis_errors():
                await self._redis.unlink(*names)

    async def settle(self, doc: Document, *, ready: bool, chunks: int = 0, error: str | None = None) -> bool:
        """Record the outcome of indexing ``doc.version``; False when a newer version replaced it."""
        settled = msgspec.structs.replace(doc, updated_at=now_ms())
        old_chunks: list[str] = []
        if ready:
            if doc.ready_version and doc.ready_version != doc.version:
                old_chunks = [keys.rag_chunks(doc.namespace, doc.key, doc.ready_version)]
            settled = msgspec.structs.replace(settled, status="ready", ready_version=doc.version, chunks=chunks,
                                              error=None)
        else:
            settled = msgspec.structs.replace(settled, status="failed", error=error)
        with redis_errors():
            return bool(await self._scripts.run(
                RAG_SETTLE, [keys.rag_documents(doc.namespace), keys.rag_state(doc.namespace),
                               keys.rag_content(doc.namespace, doc.key), *old_chunks],
                [keys.rag_channel(doc.namespace), doc.key, doc.version, _encode(settled)]))

    async def chunk_windows(self, windows: Sequence[tuple[Document, int, int]]) -> list[dict[int, StoredChunk]]:
        """For each (document, first, last): its ready version's chunks first..last (inclusive)
        that exist, by index; all read in one round trip."""
        if not windows:
            return []
        ranges = [range(max(0, first), last + 1) for _, first, last in windows]
        with redis_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for (doc, _, _), wanted in zip(windows, ranges, strict=True):
                    pipe.hmget(keys.rag_chunks(doc.namespace, doc.key, doc.ready_version), [str(i) for i in wanted])
                replies = await pipe.execute()
        return [{i: _decode_chunk(as_bytes(r)) for i, r in zip(wanted, raw, strict=True) if r is not None}
                for wanted, raw in zip(ranges, replies, strict=True)]

    async def version(self, namespace: str) -> int:
        """The namespace's change counter (what its live queries are versioned by)."""
        with redis_errors():
            return int(await self._redis.hget(keys.rag_state(namespace), "version") or 0)
