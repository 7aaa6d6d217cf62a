"""Exporting and erasing a user's data on request, through real processes (web, generation worker, index process
with its embedded vector engine): a user with data in every store is erased over HTTP and nothing
of theirs is left in any key, field, member or entry, while the thread they shared with someone
else keeps that person's messages. An erasure whose process is killed in the middle is finished by
the next ask (the `threadline erase` command), once the dead runner's lease ran out; one asked
while another runner holds the erasure leaves it to that runner (tests/shared/test_erasure.py)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scenarios.memory.test_memory import eventually, index_hits
from tests.support import procs
from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared import keys
from threadline.shared.auth import mint
from threadline.shared.faults import EXIT_STATUS

pytestmark = pytest.mark.timeout(600)  # (its waits are bounds for a loaded machine, past pytest's 120 s)

SECRET_WORDS = "lighthouse keeper marmalade"  # what the erased user wrote (with their id: each test's own)
REPLY_WORDS = "tangerine semaphore"  # what the model answered them


def said(who: str) -> str:
    return f"{SECRET_WORDS} {who}"


def answered(who: str) -> str:
    return f"{REPLY_WORDS} {who}"


@pytest.fixture(scope="module")
def erasing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"EMBEDDING_MODEL": "concepts", "RATE_LIMIT_SENDS_PER_MINUTE": "100", "ERASE_LEASE_MS": "1000"}
    with run_stack(tmp_path_factory.mktemp("erase"), webs=1, workers=1, env=env, index=True) as stack:
        yield stack


def http(stack: Stack, user: str, admin: bool = False) -> httpx.Client:
    token = mint(SECRET, user, admin=admin)
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def traces(stack: Stack, needles: tuple[str, ...]) -> list[str]:
    """Every key whose name, or any field, value, member or entry, holds one of ``needles`` (RQ's
    own job records aside: their payloads are compressed, and expire; and the test app's own
    records, test:*, which its hooks keep)."""
    client = stack.store()
    found = []
    try:
        for key in client.scan_iter(count=1000):
            name = key.decode()
            if name.startswith(("rq:", "test:")):
                continue
            kind = client.type(key).decode()
            blobs: list[Any] = [key]
            if kind == "string":
                blobs.append(client.get(key))
            elif kind == "hash":
                blobs += [b for kv in client.hgetall(key).items() for b in kv]
            elif kind == "list":
                blobs += client.lrange(key, 0, -1)
            elif kind == "set":
                blobs += list(client.smembers(key))
            elif kind == "zset":
                blobs += client.zrange(key, 0, -1)
            elif kind == "stream":
                blobs += [b for _, fields in client.xrange(key) for kv in fields.items() for b in kv]
            if any(b and n.encode() in b for b in blobs for n in needles):
                found.append(name)
    finally:
        client.close()
    return found


def fill(stack: Stack, who: str, friend: str) -> dict[str, str]:
    """Data of ``who`` in every store: a thread of theirs with a reply (usage, vectors, a stream), a
    file attached to a message, a snippet, a RAG document, an item, a workflow run, rate-limit state and
    idempotency records; and a thread of ``friend``'s shared with them, where they wrote too."""
    words, reply = said(who), answered(who)
    stack.script({"kind": "text", "chunks": [reply]}, {"kind": "text", "chunks": [reply]})
    with http(stack, who) as me, http(stack, friend) as them:
        tid = me.post("/api/threads", json={"title": f"{who} plans"}).json()["threadId"]
        fid = me.post("/api/files?name=notes.txt", content=f"{words} file".encode(),
                      headers={"Content-Type": "text/plain"}).json()["fileId"]
        r = me.post(f"/api/threads/{tid}/messages", headers={"Idempotency-Key": "send-1"},
                    json={"message": {"role": "user", "content": [{"type": "text", "text": words},
                                                                  {"type": "file", "fileId": fid}]},
                          "agentName": "echo"})
        assert r.status_code == 201, r.text
        assert me.post(f"/api/threads/{tid}/snippets", json={"kind": "canvas", "content": f"{words} edit"}
                       ).status_code == 201
        r = me.post("/api/rag/user/documents", json={"key": "diary.md", "content": f"# Diary\n{words}"})
        assert r.status_code == 202, r.text
        run = me.post("/api/workflows", json={"name": "child_sum", "args": [1, 2]}).json()["runId"]
        assert me.put("/api/memory/working", json={"text": f"{words} memory"}).status_code == 200
        assert me.put("/api/store/user/items/diet", json={"value": f"{words} item"}).status_code == 200
        r = me.post("/api/schedules", json={"name": "daily", "timing": {"cron": "0 8 * * *"},
                                            "action": {"kind": "send", "threadId": tid, "prompt": f"{words} daily"}})
        assert r.status_code == 201, r.text
        shared = them.post("/api/threads", json={"title": "friends"}).json()["threadId"]
        them.post(f"/api/threads/{shared}/messages", json={"prompt": "the friend's own words", "generate": False})
        assert them.post(f"/api/threads/{shared}/members", json={"userId": who}).status_code == 200
        r = me.post(f"/api/threads/{shared}/messages", json={"prompt": f"{words} shared", "agentName": "echo"})
        assert r.status_code == 201, r.text
        me.post(f"/api/threads/{shared}/snippets", json={"kind": "note", "content": f"{words} note"})

        def unsettled() -> list[str]:  # (bounds for a loaded machine: the index process loads its model first)
            replies = [m for t in (tid, shared) for m in me.get(f"/api/threads/{t}/messages").json()["page"]
                       if m["role"] == "assistant" and m["status"] == "success"]
            doc = me.get("/api/rag/user/documents/diary.md").json()
            ran = me.get(f"/api/workflows/{run}").json()["status"]
            return [what for what, done in (("replies", len(replies) == 2), ("document", doc["status"] == "ready"),
                                            ("run", ran == "completed")) if not done]
        deadline = time.monotonic() + 240
        while (waiting := unsettled()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not waiting, f"never settled: {waiting}"
        eventually(lambda: index_hits(stack, who, tid, "marmalade"), timeout=120)
    return {"thread": tid, "shared": shared, "file": fid, "run": run}


def assert_nothing_left(stack: Stack, who: str, friend: str, made: dict[str, str]) -> None:
    assert eventually(timeout=120, check=lambda: index_hits(stack, who, made["thread"], "marmalade") == []
                      and index_hits(stack, who, made["shared"], "marmalade") == [])
    deadline = time.monotonic() + 60  # (the index process may still hold the last op, forget_user)
    while (left := traces(stack, (who,))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], left
    with http(stack, "ops", admin=True) as admin, http(stack, friend) as them:
        assert admin.get(f"/api/threads/{made['thread']}").status_code == 404
        assert admin.get(f"/api/workflows/{made['run']}").status_code == 404
        assert admin.get(f"/api/rag/user:{who}/documents").json()["page"] == []
        page = them.get(f"/api/threads/{made['shared']}/messages").json()["page"]
        assert [m["text"] for m in page] == ["the friend's own words"]  # theirs stays
        assert them.get(f"/api/threads/{made['shared']}").json()["members"] == []
        usage = admin.get("/api/usage", params={"userId": who}).json()
        assert usage["totals"]["calls"] == 0


def exported(stack: Stack, who: str, as_user: str) -> dict[str, bytes]:
    """The archive of ``who``'s data downloaded by ``as_user``: its members by name."""
    with http(stack, as_user, admin=as_user == "ops") as c, c.stream("GET", f"/api/users/{who}/export") as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar", r.read()
        body = b"".join(r.iter_bytes())
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def jsonl(members: dict[str, bytes], prefix: str) -> list[dict[str, Any]]:
    return [json.loads(line) for name, data in sorted(members.items()) if name.startswith(prefix)
            and name.endswith(".jsonl") for line in data.splitlines()]


def test_an_export_holds_what_is_theirs_and_nothing_of_anyone_else(erasing: Stack) -> None:
    who, friend = "erin-x1", "otto-x1"
    made = fill(erasing, who, friend)
    with http(erasing, "someone") as other:
        assert other.get(f"/api/users/{who}/export").status_code == 403
    members = exported(erasing, who, who)
    assert {t["threadId"] for t in jsonl(members, "threads.jsonl")} == {made["thread"], made["shared"]}
    own = jsonl(members, f"threads/{made['thread']}/messages")
    assert [(m["role"], m["text"]) for m in own] == [("user", said(who)), ("assistant", answered(who))]
    theirs = jsonl(members, f"threads/{made['shared']}/messages")  # theirs only: not the friend's
    assert [m["text"] for m in theirs] == [f"{said(who)} shared", answered(who)]
    assert [s["content"] for s in jsonl(members, f"threads/{made['shared']}/snippets")] == [f"{said(who)} note"]
    assert members[f"files/{made['file']}/notes.txt"] == f"{said(who)} file".encode()
    assert any(said(who) in c["text"] for c in jsonl(members, "documents/diary.md.chunks"))
    assert [r["runId"] for r in jsonl(members, "workflows")] == [made["run"]]
    assert len(jsonl(members, "usage")) >= 2 and {e["userId"] for e in jsonl(members, "usage")} == {who}
    assert json.loads(members["working-memory.json"])["text"] == f"{said(who)} memory"
    assert [(i["key"], i["value"]) for i in jsonl(members, "items")] == [("diet", f"{said(who)} item")]
    assert [s["action"]["prompt"] for s in jsonl(members, "schedules")] == [f"{said(who)} daily"]
    with http(erasing, "ops", admin=True) as admin:
        admin.post(f"/api/users/{who}/erase")
        eventually(lambda: admin.get(f"/api/users/{who}/erase").json()["status"] == "done", timeout=180)
    after = exported(erasing, who, "ops")
    assert [n for n, data in after.items() if data.strip()] == []  # nothing left to export


def test_an_erasure_leaves_nothing_of_the_user_and_keeps_everyone_elses(erasing: Stack) -> None:
    who, friend = "erin-e1", "otto-e1"
    made = fill(erasing, who, friend)
    assert traces(erasing, (who,))  # (the check finds what is there)
    with http(erasing, "ops", admin=True) as admin, http(erasing, who) as me:
        assert me.post(f"/api/users/{who}/erase").status_code == 403  # ERASE_SELF_SERVICE is off
        r = admin.post(f"/api/users/{who}/erase")
        assert r.status_code == 202 and r.json()["status"] == "running", r.text
        done = eventually(lambda: (v := admin.get(f"/api/users/{who}/erase").json())["status"] == "done" and v,
                          timeout=180)
        # their thread, and in the shared one their prompt, its reply and their snippet
        assert done["erased"]["threads"] == 4 and done["erased"]["files"] == 1, done
        assert done["erased"]["documents"] == 1 and done["erased"]["workflows"] == 1, done
        assert done["erased"]["schedules"] == 1 and done["erased"]["items"] == 1, done
    assert_nothing_left(erasing, who, friend, made)


def test_an_erasure_killed_in_the_middle_is_finished_by_the_next_ask(erasing: Stack) -> None:
    who, friend = "erin-e2", "otto-e2"
    made = fill(erasing, who, friend)
    env = procs.child_env(REDIS_URL=erasing.redis_url, AUTH_SECRET=SECRET, **erasing.env)
    erase = [sys.executable, "-m", "threadline", "erase", who]
    died = subprocess.run(erase, cwd=procs.ROOT, env={**env, "THREADLINE_CRASH_AT": "erase:files"},
                          capture_output=True, timeout=120)
    assert died.returncode == EXIT_STATUS, died.stderr.decode()[-2000:]
    client = erasing.store()
    try:  # it died with the schedules, threads and files gone and the files step not recorded
        assert client.hget(keys.erasure(who), "step") == b"2"
        assert client.hget(keys.file(made["file"]), "rec") is None
        assert client.exists(keys.thread(made["thread"])) == 0
    finally:
        client.close()
    time.sleep(1.2)  # the dead runner's lease (ERASE_LEASE_MS) runs out
    again = subprocess.run(erase, cwd=procs.ROOT, env=env, capture_output=True, timeout=120)
    assert again.returncode == 0 and b"done" in again.stdout, again.stderr.decode()[-2000:]
    assert_nothing_left(erasing, who, friend, made)
