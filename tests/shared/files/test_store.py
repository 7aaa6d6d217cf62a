"""Files against a real Valkey and both blob stores (a directory; a bucket on moto's S3 server):
content stored once, sniffing and limits, reference counts exact through every way a message
is saved or deleted, the vacuum (also racing a save), another user's file refused."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.pdf import pdf_with_pages
from threadline.shared import keys
from threadline.shared.errors import BadRequest, Conflict, NotFound, TooLarge, Unsupported
from threadline.shared.files.refs import FILE_REF
from threadline.shared.files.store import FileStore
from threadline.shared.records import FilePart, ImagePart, Message, TextPart
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def with_files(*file_ids: str, text: str = "see attached") -> Message:
    parts = [TextPart(text=text), *(ImagePart(file_id=f) for f in file_ids)]
    return Message(message_id="", thread_id="", text=text, parts=parts)


async def refs(files: FileStore, *file_ids: str) -> list[int]:
    found = await files.many(list(file_ids))
    return [found[f].refs if f in found else -1 for f in file_ids]


async def test_the_same_bytes_are_stored_once_and_read_back_in_ranges(files: FileStore, store: Store) -> None:
    a = await files.upload("alice", "cat.png", PNG)
    b = await files.upload("alice", "copy of cat.png", PNG)
    assert a.file_id != b.file_id and a.hash == b.hash and a.media_type == "image/png" and a.size == len(PNG)
    assert await store.redis.scard(keys.blob_files(a.hash)) == 2
    assert await files.read(b) == PNG
    assert await files.read(a, 1, 4) == b"PNG"
    assert [f.file_id for f in (await files.list("alice")).page] == [b.file_id, a.file_id]
    await files.delete(a.file_id, "alice")
    assert await files.read(b) == PNG  # the content stays while a record shares it
    await files.delete(b.file_id, "alice")
    assert not await files.blobs.exists(a.hash)
    with pytest.raises(NotFound):
        await files.get(a.file_id, "alice")


async def test_types_come_from_the_bytes_and_limits_hold(files: FileStore) -> None:
    assert (await files.upload("alice", "notes.png", b"plain words, not a picture")).media_type == "text/plain"
    assert (await files.upload("alice", "t.md", b"# Title\n\ntext")).media_type == "text/markdown"
    assert (await files.upload("alice", "r.pdf", pdf_with_pages("report"))).media_type == "application/pdf"
    with pytest.raises(BadRequest):
        await files.upload("alice", "empty.txt", b"")
    with pytest.raises(TooLarge):
        await files.upload("alice", "big.txt", b"a" * 70_000)
    with pytest.raises(Unsupported):
        await files.upload("alice", "setup.exe", b"MZ\x90\x00" + b"\x00" * 60)
    assert (await files.upload("alice", "../../etc/pass\x00wd", b"x")).name == "passwd"


async def test_reference_counts_follow_every_save_and_delete(files: FileStore, store: Store) -> None:
    f1 = (await files.upload("alice", "a.png", PNG)).file_id
    f2 = (await files.upload("alice", "b.txt", b"hello")).file_id
    t = await store.threads.create("alice")
    tid = t.thread_id
    _, (m1, m2) = await store.messages.save(tid, "alice", [with_files(f1, f2), with_files(f1)])
    assert await refs(files, f1, f2) == [2, 1]
    m2.parts = [TextPart(text="no file any more")]
    await store.messages.replace(tid, [m2])
    assert await refs(files, f1, f2) == [1, 1]
    m2.parts = [FilePart(file_id=f2)]
    await store.messages.replace(tid, [m2])
    assert await refs(files, f1, f2) == [1, 2]
    await store.messages.delete([m1.message_id], "alice")
    assert await refs(files, f1, f2) == [0, 1]
    assert await store.redis.zscore(keys.files_idle(f1), f1) is not None  # idle: the vacuum may take it
    _, (m3,) = await store.messages.save(tid, "alice", [with_files(f1)])
    assert await store.redis.zscore(keys.files_idle(f1), f1) is None
    await store.messages.delete_range(tid, "alice", start_order=m3.order, end_order=m3.order + 1)
    assert await refs(files, f1, f2) == [0, 1]
    # the final message of a stream, stored when the stream ends
    reply = Message(message_id="", thread_id="", role="assistant", status="pending", text="")
    _, (pending,) = await store.messages.save(tid, None, [reply])
    stream_id, _ = await store.streams.open(pending, agent_name="a", prompt_message_id=m2.message_id)
    pending.status, pending.parts = "success", [ImagePart(file_id=f1)]
    await store.streams.finish(tid, stream_id, [pending])
    assert await refs(files, f1, f2) == [1, 1]
    await store.delete_thread(tid, "alice")
    assert await refs(files, f1, f2) == [0, 0]
    t2 = await store.threads.create("alice")
    await store.messages.save(t2.thread_id, "alice", [with_files(f1, f2)])
    assert await refs(files, f1, f2) == [1, 1]
    with pytest.raises(Conflict):
        await files.delete(f1, "alice")
    await store.delete_user("alice")
    assert await refs(files, f1, f2) == [0, 0]
    assert not await store.redis.exists(keys.thread_files(t2.thread_id))


async def test_another_users_file_or_a_missing_one_fails_the_whole_save(files: FileStore, store: Store) -> None:
    theirs = (await files.upload("bob", "b.png", PNG)).file_id
    mine = (await files.upload("alice", "a.png", PNG)).file_id
    tid = (await store.threads.create("alice")).thread_id
    for bad in (theirs, "f0000000000000000000000"):
        with pytest.raises(NotFound):
            await store.messages.save(tid, "alice", [with_files(mine), with_files(bad)])
    assert await refs(files, mine, theirs) == [0, 0]
    _, page = await store.messages.list(tid, "alice")
    assert page.page == []  # nothing of the batch was saved
    with pytest.raises(NotFound):
        await files.get(theirs, "alice")
    await files.delete(mine, "alice")  # the failed saves' pins went with them


async def test_the_vacuum_takes_only_what_no_message_uses(files: FileStore, store: Store) -> None:
    kept = (await files.upload("alice", "kept.png", PNG)).file_id
    orphan = await files.upload("alice", "orphan.txt", b"never used")
    tid = (await store.threads.create("alice")).thread_id
    await store.messages.save(tid, "alice", [with_files(kept)])
    assert await files.vacuum(grace_s=3600) == 0  # within the grace period
    assert await files.vacuum(grace_s=0) == 1
    assert await refs(files, kept, orphan.file_id) == [1, -1]
    assert not await files.blobs.exists(orphan.hash)
    again = await files.upload("alice", "orphan.txt", b"never used")  # the same bytes come back
    assert await files.read(again) == b"never used"


async def test_a_save_racing_the_vacuum_never_keeps_a_reference_to_a_vacuumed_file(files: FileStore,
                                                                                   store: Store) -> None:
    tid = (await store.threads.create("alice")).thread_id
    outcomes = {"saved": 0, "vacuumed": 0}
    for i in range(30):
        f = await files.upload("alice", f"{i}.txt", f"content {i}".encode())

        async def save(file_id: str, delay: float) -> bool:
            await asyncio.sleep(delay)  # sometimes before the vacuum's steps, sometimes between
            try:
                await store.messages.save(tid, "alice", [with_files(file_id)])
            except NotFound:
                return False
            return True

        saved, _ = await asyncio.gather(save(f.file_id, 0.003 * (i % 6)), files.vacuum(grace_s=0))
        found = await files.many([f.file_id])
        if saved:
            assert f.file_id in found and found[f.file_id].refs == 1
            assert await files.read(found[f.file_id]) == f"content {i}".encode()
            outcomes["saved"] += 1
        else:
            assert f.file_id not in found and not await files.blobs.exists(f.hash)
            outcomes["vacuumed"] += 1
    assert outcomes["saved"] and outcomes["vacuumed"], outcomes  # both orders happened


async def test_follow_ups_of_one_message_in_any_order_leave_its_last_reference(files: FileStore,
                                                                              store: Store) -> None:
    fid = (await files.upload("alice", "a.png", PNG)).file_id

    async def follow(version: int, on: int) -> int:
        return int(await store.scripts.run(FILE_REF, [keys.file(fid), keys.file_refs(fid), keys.files_idle(fid)],
                                           ["t1 m1", version, on, 5, fid]))

    assert await follow(3, 1) == 1
    assert [await follow(2, 0), await follow(1, 1), await follow(3, 1)] == [-1, -1, -1]  # older, or done already
    assert await follow(5, 0) == 0 and await store.redis.zscore(keys.files_idle(fid), fid) == 5
    assert await follow(4, 1) == -1 and await refs(files, fid) == [0]
    assert await follow(6, 1) == 1 and await store.redis.zscore(keys.files_idle(fid), fid) is None
