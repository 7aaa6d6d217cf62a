"""Files written in key layout 8 (app-wide hashes of records, reference counts, idle files and
contents being deleted) are served as before after ``layout.migrate``: the records, their counts,
their owner's list, their idle times and their shared contents; and they go on being counted."""

from __future__ import annotations

import json

import pytest
import redis

from tests.support.store import single_node
from threadline.shared import keys
from threadline.shared.files.store import FileStore
from threadline.shared.records import ImagePart, Message, TextPart
from threadline.shared.storage import layout
from threadline.shared.threads import Store

pytestmark = [pytest.mark.anyio, single_node]  # (the old layouts were of one node)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
OLD = {name: f"tl:files{name}" for name in ("", ":refs", ":idle", ":blobs", ":deleting")}


def to_layout_8(client: redis.Redis) -> None:
    """Put every file's keys back as layout 8 kept them (and drop what layout 8 did not have)."""
    for key in list(client.scan_iter(match="tl:*:f:*:file")):
        rec = client.hget(key, "rec") or b""
        record = json.loads(rec)
        fid = record["fileId"]
        client.hset(OLD[""], fid, rec)
        if refs := int(client.hget(key, "refs") or 0):
            client.hset(OLD[":refs"], fid, refs)
        if (since := client.zscore(keys.files_idle(fid), fid)) is not None:
            client.zadd(OLD[":idle"], {fid: since})
        client.hincrby(OLD[":blobs"], record["hash"], 1)
        client.delete(key, keys.file_refs(fid), keys.files_idle(fid), keys.blob_files(record["hash"]))
    client.hset(OLD[":deleting"], "0" * 64, 1)  # a deletion that had begun
    for key in client.scan_iter(match="tl:*:t:*:thread"):
        client.hdel(key, "fileSeq")
    client.set(keys.LAYOUT, 8)


def with_files(*file_ids: str) -> Message:
    return Message(message_id="", thread_id="", text="see", parts=[TextPart(text="see"),
                                                                  *(ImagePart(file_id=f) for f in file_ids)])


async def test_files_of_layout_8_are_migrated_and_counted_on(files: FileStore, store: Store, redis_url: str) -> None:
    a = await files.upload("alice", "a.png", PNG)
    b = await files.upload("alice", "b.png", PNG)  # the same content
    idle = await files.upload("alice", "c.txt", b"nobody uses me")
    tid = (await store.threads.create("alice")).thread_id
    _, (m1, _) = await store.messages.save(tid, "alice", [with_files(a.file_id, b.file_id), with_files(a.file_id)])
    before = (await files.list("alice")).page
    assert [f.refs for f in before] == [0, 1, 2]

    with redis.Redis.from_url(redis_url) as client:
        to_layout_8(client)
        assert not list(client.scan_iter(match="tl:*:f:*"))
        assert layout.migrate(client) == 3 and layout.migrate(client) == 0
        assert not any(client.exists(name) for name in OLD.values())
        assert client.hget(keys.blob("0" * 64), "deleting") == b"1"
        assert client.scard(keys.blob_files(a.hash)) == 2
        assert client.zscore(keys.files_idle(idle.file_id), idle.file_id) is not None

    assert (await files.list("alice")).page == before
    assert await files.read(await files.get(b.file_id, "alice")) == PNG
    await store.messages.delete([m1.message_id], "alice")  # its references go, counted from the migrated ones
    assert [f.refs for f in (await files.list("alice")).page] == [0, 0, 1]
    await files.delete(b.file_id, "alice")
    assert await files.vacuum(grace_s=0) == 1  # the idle one; the referenced one stays
    assert [f.file_id for f in (await files.list("alice")).page] == [a.file_id]
    assert await files.read(await files.get(a.file_id, "alice")) == PNG
