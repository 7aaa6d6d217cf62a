"""Usage between real processes: concurrent replies in two worker processes each count once in the
ledger, with the app's prices; the live query follows; HTTP for the user, for admins, as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest

from tests.scenarios.replies.helpers import open_tab
from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with run_stack(tmp_path_factory.mktemp("usage"), webs=1, workers=4) as stack:
        stack.start_worker("worker-b")  # a second worker process: both record into one ledger
        yield stack


def http(stack: Stack, user: str, **claims: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {mint(SECRET, user, **claims)}"},
                        timeout=10)


def replies_of(c: httpx.Client, tid: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = c.get(f"/api/threads/{tid}/messages").json()["page"]
        done = [m for m in page if m["role"] == "assistant" and m["status"] == "success"]
        if done:
            return done
        time.sleep(0.1)
    raise AssertionError("no reply")


def test_concurrent_replies_each_count_once_with_their_cost(site: Stack) -> None:
    who = "payer"
    with http(site, who) as c:
        threads = [c.post("/api/threads", json={"title": f"t{i}"}).json()["threadId"] for i in range(12)]

        def ask(tid: str) -> list[dict[str, Any]]:
            with http(site, who) as mine:
                mine.post(f"/api/threads/{tid}/messages", json={"prompt": f"say something about {tid}",
                                                               "agentName": "echo"}).raise_for_status()
                return replies_of(mine, tid)

        with ThreadPoolExecutor(12) as pool:
            replies = [m for found in pool.map(ask, threads) for m in found]
        usage = c.get("/api/usage").json()
    prompt = sum(m["usage"]["promptTokens"] for m in replies)
    completion = sum(m["usage"]["completionTokens"] for m in replies)
    totals = usage["totals"]
    assert (totals["calls"], totals["input"], totals["output"]) == (12, prompt, completion)
    assert totals["costMicros"] == prompt * 1 + completion * 2  # PRICES of tests.support.agents
    assert usage["byModel"]["fake"]["calls"] == 12 and usage["byAgent"]["echo"]["calls"] == 12
    assert usage["byKind"]["step"]["costMicros"] == totals["costMicros"]
    assert usage["period"] == time.strftime("%Y-%m", time.gmtime())


def test_the_live_query_follows_each_call(site: Stack) -> None:
    async def run() -> None:
        tab = await open_tab(site.web, "watcher")
        try:
            first = await tab.subscribe("u", "usage.get", {})
            assert first["value"]["totals"]["calls"] == 0
            tid = (await tab.mutate("threads.create", {"title": "live"}))["value"]["threadId"]
            await tab.mutate("messages.send", {"threadId": tid, "prompt": "hello", "agentName": "echo"})
            seen = (await tab.wait_result("u", lambda v: v["totals"]["calls"] == 1))["value"]
            assert seen["totals"]["input"] == 11 and seen["byModel"]["fake"]["costMicros"] > 0
        finally:
            await tab.close()

    asyncio.run(run())


def test_admins_read_anyones_usage_and_the_ledger_as_csv(site: Stack) -> None:
    with http(site, "payer") as c, http(site, "ops", admin=True) as admin:
        assert c.get("/api/usage?userId=watcher").status_code == 403
        assert c.get("/api/usage?period=2026-99").status_code == 400
        theirs = admin.get("/api/usage?userId=payer").json()
        assert theirs["userId"] == "payer" and theirs["totals"]["calls"] == 12
        whole = admin.get("/api/usage?userId=*").json()
        assert whole["totals"]["calls"] >= 13
        assert [u["userId"] for u in whole["users"]][:1] == ["payer"]  # the biggest spender first
        csv = admin.get("/api/usage?userId=payer&format=csv")
        assert csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.strip().splitlines()
        assert len(lines) == 13 and lines[0].startswith("at,userId") and ",payer," in lines[1]
        empty = admin.get("/api/usage?userId=payer&period=2001-01").json()
        assert empty["totals"]["calls"] == 0


def test_a_wildcard_subject_reads_nothing_app_wide(site: Stack) -> None:
    forged = jwt.encode({"sub": "*"}, SECRET, algorithm="HS256")  # a token the app's backend was tricked into
    resp = httpx.get(f"{site.web}/api/usage", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401 and "every user" in resp.json()["message"]
    with http(site, "payer") as c:
        assert c.get("/api/usage?userId=*").status_code == 403


def test_csv_cells_that_would_be_formulas_are_kept_as_text(site: Stack) -> None:
    who = "=HYPERLINK(\"http://evil\",\"x\")"
    with http(site, who) as c:
        tid = c.post("/api/threads", json={"title": "t"}).json()["threadId"]
        c.post(f"/api/threads/{tid}/messages", json={"prompt": "hello", "agentName": "echo"}).raise_for_status()
        replies_of(c, tid)
    with http(site, "ops", admin=True) as admin:
        deadline = time.monotonic() + 10
        while True:
            resp = admin.get("/api/usage", params={"userId": who, "format": "csv"})
            rows = list(csv.reader(io.StringIO(resp.text)))
            if len(rows) > 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert len(rows) == 2, rows
    assert rows[1][1] == "'" + who  # shown as text, not evaluated
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
