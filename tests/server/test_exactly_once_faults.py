"""Exactly-once mutations under faults: a killed web process, a killed and restarted Valkey.

Many connections keep sends in flight, the fault hits, and every request that
got no `ok` answer is sent again (same clientId, same id). Then we count: each
request's message must be stored exactly once, and no acknowledged one lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import TEST_SECRET, token_for
from tests.support import procs
from tests.support.wsutil import open_raw, send

TABS = 40
PER_TAB = 20
ENV = {"RATE_LIMIT_SENDS_PER_MINUTE": "0"}


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}


@contextlib.contextmanager
def valkey_and_webs(tmp: Path, webs: int = 2) -> Iterator[tuple[list[Any], int, list[tuple[Any, str]]]]:
    """A persistent Valkey (AOF) and web processes; yields ([valkey proc], port, [(web proc, base)])."""
    valkey, port = procs.start_valkey(tmp / "valkey", persist=True)
    holder = [valkey]
    started = []
    try:
        for i in range(webs):
            proc, wport = procs.start_web(f"redis://127.0.0.1:{port}/0", auth_secret=TEST_SECRET,
                                          extra_env=ENV, log=tmp / f"web{i}.log")
            started.append((proc, f"http://127.0.0.1:{wport}"))
        yield holder, port, started
    finally:
        for proc, _ in started:
            procs.stop(proc)
        procs.stop(holder[0])


async def send_all(ws: Any, thread_id: str, ids: list[str], answers: dict[str, dict[str, Any]]) -> None:
    """Send a messages.send per id at once (each id doubles as clientMessageId); record answers."""
    for rid in ids:
        await send(ws, {"type": "mutate", "id": rid, "name": "messages.send",
                        "args": {"threadId": thread_id, "prompt": f"msg {rid}", "generate": False,
                                 "clientMessageId": rid}})
    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
        async with asyncio.timeout(30):
            while any(rid not in answers or not answers[rid]["ok"] for rid in ids):
                frame = json.loads(await ws.recv())
                if frame["type"] == "mutated":
                    answers[frame["id"]] = frame
                    if not frame["ok"] and frame["error"]["code"] == "unavailable":
                        return  # storage down: resend later


def stored_counts(base: str, thread_id: str) -> Counter[str]:
    page = httpx.get(f"{base}/api/threads/{thread_id}/messages?numItems=100", headers=auth("alice")).json()
    return Counter(m["clientMessageId"] for m in page["page"])


async def resend_unanswered(base: str, thread_ids: list[str], plan: list[list[str]],
                            answers: list[dict[str, dict[str, Any]]]) -> None:
    """Resend what has no ok answer, as a client does, until each has one (a store that just came
    back may still answer `unavailable` for a moment on a loaded machine); at most 20 rounds."""
    for _ in range(20):
        await _resend_round(base, thread_ids, plan, answers)
        if all(answers[i].get(rid, {}).get("ok") for i in range(TABS) for rid in plan[i]):
            return
        await asyncio.sleep(0.5)


async def _resend_round(base: str, thread_ids: list[str], plan: list[list[str]],
                        answers: list[dict[str, dict[str, Any]]]) -> None:
    async def one(i: int) -> None:
        missing = [rid for rid in plan[i] if not answers[i].get(rid, {}).get("ok")]
        if not missing:
            return
        ws = await open_raw(base, "alice", f"tab-{i}")
        try:
            await send_all(ws, thread_ids[i], missing, answers[i])
        finally:
            await ws.close()

    await asyncio.gather(*(one(i) for i in range(TABS)))


def setup_threads(base: str) -> list[str]:
    return [httpx.post(f"{base}/api/threads", json={}, headers=auth("alice")).json()["threadId"]
            for _ in range(TABS)]


def check_exactly_once(base: str, thread_ids: list[str], plan: list[list[str]],
                       answers: list[dict[str, dict[str, Any]]]) -> None:
    duplicates = lost = unanswered = 0
    for i, tid in enumerate(thread_ids):
        counts = stored_counts(base, tid)
        duplicates += sum(n - 1 for n in counts.values() if n > 1)
        lost += sum(1 for rid in plan[i] if counts[rid] == 0)
        unanswered += sum(1 for rid in plan[i] if not answers[i].get(rid, {}).get("ok"))
        for rid in plan[i]:  # a replayed answer names the same message as the first one
            if answers[i].get(rid, {}).get("ok"):
                assert answers[i][rid]["value"]["messageId"].startswith(tid)
    assert (duplicates, lost, unanswered) == (0, 0, 0)


async def in_flight_then(base: str, thread_ids: list[str], plan: list[list[str]],
                         answers: list[dict[str, dict[str, Any]]], fault: Any) -> None:
    """Open TABS connections, send everything, and let ``fault`` strike mid-way."""
    tabs = [await open_raw(base, "alice", f"tab-{i}") for i in range(TABS)]
    senders = [asyncio.create_task(send_all(ws, thread_ids[i], plan[i], answers[i])) for i, ws in enumerate(tabs)]
    # strike once some requests are answered and most are still in flight
    async with asyncio.timeout(30):
        while sum(len(a) for a in answers) < TABS:
            await asyncio.sleep(0.005)
    await asyncio.to_thread(fault)
    await asyncio.gather(*senders)
    for ws in tabs:
        with contextlib.suppress(Exception):
            await ws.close()


@pytest.mark.timeout(180)
def test_killed_web_process_with_sends_in_flight_stores_each_exactly_once(tmp_path: Path) -> None:
    with valkey_and_webs(tmp_path) as (_, _, ((victim, web_a), (_, web_b))):
        thread_ids = setup_threads(web_a)
        plan = [[f"r{i}-{j}" for j in range(PER_TAB)] for i in range(TABS)]
        answers: list[dict[str, dict[str, Any]]] = [{} for _ in range(TABS)]

        asyncio.run(in_flight_then(web_a, thread_ids, plan, answers, lambda: victim.send_signal(signal.SIGKILL)))
        in_flight = sum(1 for i in range(TABS) for rid in plan[i] if not answers[i].get(rid, {}).get("ok"))
        assert in_flight > 0  # the kill did cut requests off
        asyncio.run(resend_unanswered(web_b, thread_ids, plan, answers))
        check_exactly_once(web_b, thread_ids, plan, answers)


@pytest.mark.timeout(180)
def test_killed_and_restarted_valkey_stores_each_exactly_once(tmp_path: Path) -> None:
    with valkey_and_webs(tmp_path, webs=1) as (holder, port, ((_, web),)):
        thread_ids = setup_threads(web)
        plan = [[f"v{i}-{j}" for j in range(PER_TAB)] for i in range(TABS)]
        answers: list[dict[str, dict[str, Any]]] = [{} for _ in range(TABS)]

        def kill_and_restart() -> None:
            holder[0].send_signal(signal.SIGKILL)
            holder[0].wait()
            holder[0], _ = procs.start_valkey(tmp_path / "valkey", persist=True, port=port)

        asyncio.run(in_flight_then(web, thread_ids, plan, answers, kill_and_restart))
        asyncio.run(resend_unanswered(web, thread_ids, plan, answers))
        check_exactly_once(web, thread_ids, plan, answers)
