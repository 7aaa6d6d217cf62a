"""Writes split in two steps over two slots end exactly once when the process doing them is killed
between the steps (THREADLINE_CRASH_AT, shared.faults): a thread created, renamed or deleted by a
web process that died before it changed the owner's list is listed (or unlisted, or its rename
told) once, by the resend of the request or by the sweeper of another web process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import procs
from tests.support.stack import SECRET, run_stack
from threadline.shared import keys
from threadline.shared.auth import mint
from threadline.shared.faults import EXIT_STATUS

ALICE = {"Authorization": f"Bearer {mint(SECRET, 'alice')}"}
CRASH = {"THREADLINE_CRASH_AT": "follow:threads.user"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    proc, port = procs.start_valkey(tmp_path / "store")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        procs.stop(proc)


def crashed(url: str, tmp: Path, method: str, path: str, **kwargs: object) -> None:
    """Send one request to a web process that dies between the two steps of its write."""
    proc, port = procs.start_web(url, auth_secret=SECRET, extra_env=CRASH, log=tmp / "crashing-web.log")
    try:
        with pytest.raises(httpx.TransportError):
            httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
        assert proc.wait(timeout=30) == EXIT_STATUS
    finally:
        procs.stop(proc)


def listed(base: str) -> list[str]:
    return [t["threadId"] for t in httpx.get(f"{base}/api/threads?numItems=100", headers=ALICE).json()["page"]]


def test_thread_writes_killed_between_their_steps_end_exactly_once(tmp_path: Path, store: str) -> None:
    client = redis.Redis.from_url(store)
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
