"""Writes split in two steps over two slots end exactly once when the process doing them is killed
between the steps (THREADLINE_CRASH_AT, shared.faults): a thread created, renamed or deleted by a
web process that died before it changed the owner's list is listed (or unlisted, or its rename
told) once, by the resend of the request or by the sweeper of another web process; a file
uploaded or deleted before its owner's list and its content heard, and a message referencing it
saved or deleted before the file heard, are counted once the same way; an edit saved by a web process
that died before it asked for its reply is answered once, by the resend; the bytes of an upload that
died before its record are vacuumed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import procs
from tests.support.faults import ALICE, crashed
from tests.support.stack import run_stack
from tests.support.store import store_server, sync_client
from threadline.shared import keys
from threadline.shared.storage.client import SyncClient


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    """A store of the test's own: one Valkey, or a local cluster in the cluster pass."""
    with store_server(tmp_path / "store") as url:
        yield url


def listed(base: str) -> list[str]:
    return [t["threadId"] for t in httpx.get(f"{base}/api/threads?numItems=100", headers=ALICE).json()["page"]]


def test_thread_writes_killed_between_their_steps_end_exactly_once(tmp_path: Path, store: str) -> None:
    with sync_client(store) as client:
        _thread_writes(tmp_path, store, client)


def _thread_writes(tmp_path: Path, store: str, client: SyncClient) -> None:
    crashed(store, tmp_path, "POST", "/api/threads", json={"title": "swept"}, headers=ALICE)
    crashed(store, tmp_path, "POST", "/api/threads", json={"title": "resent"}, headers={**ALICE, "Idempotency-Key": "k1"})
    threads = {client.hget(k, "title").decode(): client.hget(k, "threadId").decode()  # type: ignore[union-attr]
               for k in client.scan_iter(match="tl:*:t:*:thread")}
    assert set(threads) == {"swept", "resent"}  # both first steps happened
    assert client.zcard(keys.user_threads("alice")) == 0  # neither second step
    with run_stack(tmp_path / "after", worker=False, redis_url=store) as stack:
        again = httpx.post(f"{stack.web}/api/threads", json={"title": "resent"}, headers={**ALICE, "Idempotency-Key": "k1"})
        assert again.status_code == 201 and again.json()["threadId"] == threads["resent"]
        assert listed(stack.web) == [threads["resent"]]  # the resend finished its own write at once
        deadline = time.monotonic() + 60
        while len(listed(stack.web)) < 2:  # the sweeper finishes the other
            assert time.monotonic() < deadline, "the sweeper never listed the thread"
            time.sleep(0.2)
        assert sorted(listed(stack.web)) == sorted(threads.values())
        assert client.hget(keys.user_state("alice"), "seq") == b"2"  # each listed once

    version = int(client.hget(keys.user_state("alice"), "version") or 0)
    crashed(store, tmp_path, "PATCH", f"/api/threads/{threads['resent']}", json={"title": "renamed"}, headers=ALICE)
    assert client.hget(keys.thread(threads["resent"]), "title") == b"renamed"  # the thread changed
    assert int(client.hget(keys.user_state("alice"), "version") or 0) == version  # its owner's list did not hear
    crashed(store, tmp_path, "DELETE", f"/api/threads/{threads['swept']}", headers=ALICE)
    assert not client.exists(keys.thread(threads["swept"]))
    assert client.zscore(keys.user_threads("alice"), threads["swept"]) is not None  # still listed
    with run_stack(tmp_path / "after-delete", worker=False, redis_url=store) as stack:
        deadline = time.monotonic() + 60
        while client.zscore(keys.user_threads("alice"), threads["swept"]) is not None:
            assert time.monotonic() < deadline, "the sweeper never unlisted the deleted thread"
            time.sleep(0.2)
        assert listed(stack.web) == [threads["resent"]]
        while int(client.hget(keys.user_state("alice"), "version") or 0) < version + 2:  # the rename, the delete
            assert time.monotonic() < deadline, "the sweeper never told the owner's list of the rename"
            time.sleep(0.2)
    assert not [k for k in client.scan_iter(match="tl:*:outbox")]  # nothing left to do


def until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"the sweeper never {what}"
        time.sleep(0.2)


def test_file_writes_killed_between_their_steps_end_exactly_once(tmp_path: Path, store: str) -> None:
    with sync_client(store) as client:
        _file_writes(tmp_path, store, client)


def _file_writes(tmp_path: Path, store: str, client: SyncClient) -> None:
    env = {"DATA_DIR": str(tmp_path / "data")}  # the crashing webs' and the stack's
    crashed(store, tmp_path, "POST", "/api/files?name=a.txt", at="follow:files.user", env=env, content=b"kept words",
            headers=ALICE)
    (key,) = client.scan_iter(match="tl:*:f:*:file")
    record = json.loads(client.hget(key, "rec") or b"")
    fid, digest = record["fileId"], record["hash"]
    assert not client.zcard(keys.user_files("alice")) and not client.scard(keys.blob_files(digest))
    with run_stack(tmp_path / "after", worker=False, redis_url=store, env=env) as stack, \
            httpx.Client(base_url=stack.web, headers=ALICE, timeout=30) as c:
        file_of = lambda: c.get(f"/api/files/{fid}").json()
        until(lambda: [f["fileId"] for f in c.get("/api/files").json()["page"]] == [fid], "listed the upload")
        assert c.get(f"/api/files/{fid}/content").content == b"kept words"  # its bytes were stored first
        until(lambda: client.smembers(keys.blob_files(digest)) == {fid.encode()}, "gave the content its record")

        tid = c.post("/api/threads", json={"title": "with a file"}).json()["threadId"]
        content = [{"type": "text", "text": "here"}, {"type": "file", "fileId": fid}]
        crashed(store, tmp_path, "POST", f"/api/threads/{tid}/messages", at="follow:files.ref", env=env,
                json={"message": {"content": content}, "generate": False}, headers=ALICE)
        assert len(c.get(f"/api/threads/{tid}/messages").json()["page"]) == 1  # the message is saved
        assert file_of()["refs"] == 0  # the file did not hear of it
        assert c.delete(f"/api/files/{fid}").status_code == 409  # but it was pinned before the save
        until(lambda: file_of()["refs"] == 1, "counted the reference")

        crashed(store, tmp_path, "DELETE", f"/api/threads/{tid}", at="follow:files.ref", env=env, headers=ALICE)
        assert c.get(f"/api/threads/{tid}").status_code == 404 and file_of()["refs"] == 1
        until(lambda: file_of()["refs"] == 0, "took the deleted message's reference back")

        crashed(store, tmp_path, "DELETE", f"/api/files/{fid}", at="follow:files.user", env=env, headers=ALICE)
        assert c.get(f"/api/files/{fid}").status_code == 404
        until(lambda: not c.get("/api/files").json()["page"], "unlisted the deleted file")
        until(lambda: client.zscore(keys.blobs_doomed(digest), digest) is not None, "let the content go")
        again = c.post("/api/files?name=b.txt", content=b"kept words").json()  # the same content, uploaded again
        assert c.get(f"/api/files/{again['fileId']}/content").content == b"kept words"
        assert client.smembers(keys.blob_files(digest)) == {again["fileId"].encode()}
        assert [f["fileId"] for f in c.get("/api/files").json()["page"]] == [again["fileId"]]
    assert not [k for k in client.scan_iter(match="tl:*:outbox")]  # nothing left to do


def test_bytes_an_upload_stored_before_it_died_are_vacuumed_after_the_grace(tmp_path: Path, store: str) -> None:
    """A web process dies with an upload's bytes stored and no record of them (crash point
    upload:stored): they were doomed before they were stored, so the vacuum deletes them once the
    uploader's grace period is over, and not before (another upload of them may be under way)."""
    data = tmp_path / "data"
    blobs = {}
    for grace, content in (("3600", b"bytes of an upload still under way, maybe"), ("0", b"bytes nobody keeps")):
        crashed(store, tmp_path, "POST", "/api/files?name=lost.txt", at="upload:stored", content=content,
                env={"DATA_DIR": str(data), "FILES_GRACE_S": grace}, headers=ALICE)
        digest = hashlib.sha256(content).hexdigest()
        blobs[grace] = data / "files" / digest[:2] / digest[2:4] / digest
        assert blobs[grace].read_bytes() == content
    with sync_client(store) as client:
        assert not list(client.scan_iter(match="tl:*:f:*:file"))  # no record names them
    vacuum = subprocess.run([sys.executable, "-m", "threadline.workers", "vacuum"], cwd=procs.ROOT, timeout=60,
                            env=procs.child_env(REDIS_URL=store, DATA_DIR=str(data)), capture_output=True, text=True)
    assert vacuum.returncode == 0, vacuum.stderr
    assert not blobs["0"].exists() and blobs["3600"].exists()


def test_an_edit_saved_by_a_web_that_died_is_answered_once_by_the_resend(tmp_path: Path, store: str) -> None:
    with run_stack(tmp_path / "stack", workers=1, redis_url=store) as stack, \
            httpx.Client(base_url=stack.web, headers=ALICE, timeout=30) as c:
        tid = c.post("/api/threads", json={"title": "edited"}).json()["threadId"]
        shown = lambda: [(m["order"], m["role"], m["status"]) for m in reversed(c.get(f"/api/threads/{tid}/messages").json()["page"])]
        for n, prompt in enumerate(("one", "two"), 1):
            mid = c.post(f"/api/threads/{tid}/messages", json={"prompt": prompt, "agentName": "echo"}).json()["messageId"]
            until(lambda n=n: (n, "assistant", "success") in shown(), "answered the prompt")
        edit = {"prompt": "two, better", "agentName": "echo"}
        headers = {**ALICE, "Idempotency-Key": "edit-1"}
        crashed(store, tmp_path, "POST", f"/api/messages/{mid}/edit", at="send:saved", env=stack.env, json=edit,
                headers=headers)
        assert shown() == [(1, "user", "success"), (1, "assistant", "success"), (3, "user", "success")]
        again = c.post(f"/api/messages/{mid}/edit", json=edit, headers=headers)
        assert again.status_code == 201 and again.json()["order"] == 3, again.text
        until(lambda: len(shown()) == 4 and shown()[-1] == (3, "assistant", "success"), "answered the new version")
        forks = c.get(f"/api/threads/{tid}/branches").json()["forks"]
        assert [[v["order"] for v in f["versions"]] for f in forks] == [[2, 3]]  # one new version
        time.sleep(1)  # (a second reply would be on its way by now)
        assert shown() == [(1, "user", "success"), (1, "assistant", "success"), (3, "user", "success"),
                           (3, "assistant", "success")]
