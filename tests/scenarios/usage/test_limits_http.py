"""Token rate limits between real processes (RATE_LIMITS from the environment): a reply over the
limit is refused before the model is called; a global limit is one budget for two worker
processes; reservations settle on real usage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.stack import SECRET, Stack, run_stack
from threadline.shared.auth import mint

RULES = [
    {"name": "user-tokens", "on": "tokens", "limit": 3000, "periodS": 3600},  # per user
    {"name": "all-tokens", "on": "tokens", "limit": 2500, "periodS": 3600, "per": "global", "agents": ["raw"]},
    {"name": "one-at-a-time", "kind": "concurrency", "limit": 1, "agents": ["raw"]},  # per user
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"RATE_LIMITS": json.dumps(RULES)}
    with run_stack(tmp_path_factory.mktemp("limits"), webs=1, workers=4, env=env) as stack:
        stack.start_worker("worker-b")
        yield stack


def http(stack: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {mint(SECRET, user)}"}, timeout=10)


def answer(stack: Stack, user: str, prompt: str, agent: str = "echo", refused_ok: bool = False) -> dict[str, Any]:
    """The reply to ``prompt`` once it ended; with ``refused_ok``, a send the limits refused at once is
    ``{"status": "refused", "error": <why>}``."""
    with http(stack, user) as c:
        tid = c.post("/api/threads", json={"title": "t"}).json()["threadId"]
        sent = c.post(f"/api/threads/{tid}/messages", json={"prompt": prompt, "agentName": agent})
        if refused_ok and sent.status_code == 429:
            return {"status": "refused", "error": sent.json()["message"]}
        sent.raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = c.get(f"/api/threads/{tid}/messages").json()["page"]
            done = [m for m in page if m["role"] == "assistant" and m["status"] != "pending"]
            if done:
                return done[0]  # type: ignore[no-any-return]
            time.sleep(0.1)
    raise AssertionError("no reply")


def test_a_reply_over_the_limit_is_refused_before_any_model_call(site: Stack) -> None:
    site.reset_llm()
    with http(site, "big") as c:
        tid = c.post("/api/threads", json={"title": "t"}).json()["threadId"]
        huge = "tell me about " + "harbours " * 1500  # ~13,500 characters: more than 3,000 tokens
        r = c.post(f"/api/threads/{tid}/messages", json={"prompt": huge, "agentName": "echo"})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited" and "user-tokens" in r.json()["message"]
        assert c.get(f"/api/threads/{tid}/messages").json()["page"] == []  # nothing saved
    assert site.llm_requests() == []  # the model was never called: it cost nothing
    ok = answer(site, "big", "and briefly?")
    assert ok["status"] == "success" and len(site.llm_requests()) == 1
    for i in range(2):  # each reply reserves about 1,000 of the 3,000 and settles on its ~15
        assert answer(site, "big", f"more {i}")["status"] == "success"


def test_a_global_limit_is_one_budget_for_every_worker_and_settles_on_usage(site: Stack) -> None:
    site.reset_llm()
    slow = {"kind": "text", "chunks": ["one", " two", " three"], "delay_ms": 1500}  # they overlap, even on a loaded machine
    site.script(slow, slow, slow)
    # three replies at once, each reserving about 1,000 tokens of a global 2,500: one must wait. It is
    # refused in the worker, at the model call, or (a send that comes once two replies hold their
    # reservations: a loaded machine) at the send
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda i: answer(site, f"u{i}", f"hi {i}", "raw", refused_ok=True), range(3)))
    statuses = sorted(r["status"] for r in replies)
    assert statuses in (["failed", "success", "success"], ["refused", "success", "success"]), replies
    refused = next(r for r in replies if r["status"] != "success")
    assert "all-tokens" in refused["error"] and "retry in" in refused["error"]
    assert len(site.llm_requests()) == 2
    # the two finished replies used about 15 tokens each, not their 1,000 estimates: room again
    assert answer(site, "u9", "again", "raw")["status"] == "success"


def test_the_status_says_where_each_rule_stands(site: Stack) -> None:
    with http(site, "status-user") as c:
        status = c.get("/api/rate-limit?agentName=raw").json()
        rules = {r["name"]: r for r in status["rules"]}
        assert set(rules) == {"user-tokens", "all-tokens", "one-at-a-time"} and status["canSend"] is True
        assert rules["user-tokens"]["remaining"] == 3000 and rules["user-tokens"]["per"] == "user"
        assert set(c.get("/api/rate-limit?agentName=echo").json()["rules"][0]) >= {"remaining", "retryAfterMs"}
        assert {r["name"] for r in c.get("/api/rate-limit?agentName=echo").json()["rules"]} == {"user-tokens"}
        assert c.get("/api/rate-limit?agentName=nobody").status_code == 400


def test_a_concurrency_cap_refuses_a_second_reply_while_the_first_is_written(site: Stack) -> None:
    site.reset_llm()
    site.script({"kind": "text", "chunks": ["slow", " reply", " here"], "delay_ms": 600})
    with http(site, "conc") as c:
        first, second = (c.post("/api/threads", json={"title": t}).json()["threadId"] for t in ("a", "b"))
        c.post(f"/api/threads/{first}/messages", json={"prompt": "one", "agentName": "raw"}).raise_for_status()
        deadline = time.monotonic() + 20
        while not any(m["role"] == "assistant" for m in c.get(f"/api/threads/{first}/messages").json()["page"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)  # the reply is being written: it holds the user's one place
        status = c.get("/api/rate-limit?agentName=raw").json()
        cap = next(r for r in status["rules"] if r["name"] == "one-at-a-time")
        assert status["canSend"] is False and cap["on"] == "replies" and cap["remaining"] == 0
        r = c.post(f"/api/threads/{second}/messages", json={"prompt": "two", "agentName": "raw"})
        assert r.status_code == 429 and "one-at-a-time" in r.json()["message"] and r.json()["retryAfterMs"] == 1000
        assert c.post(f"/api/threads/{second}/messages", json={"prompt": "two", "agentName": "echo"}
                      ).status_code == 201  # another agent: not capped
        while not any(m["role"] == "assistant" and m["status"] == "success"
                      for m in c.get(f"/api/threads/{first}/messages").json()["page"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
        assert c.post(f"/api/threads/{second}/messages", json={"prompt": "three", "agentName": "raw"}
                      ).status_code == 201  # its place came back


def test_a_one_off_call_counts_in_the_limits_as_a_reply_does(site: Stack) -> None:
    site.reset_llm()
    huge = "summarize " + "harbours " * 1500  # more than the user's 3,000 tokens
    with http(site, "oneoff-big") as c:
        r = c.post("/api/generate", json={"prompt": huge, "agentName": "echo"})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited" and "user-tokens" in r.json()["message"]
        ok = c.post("/api/generate", json={"prompt": "briefly", "agentName": "echo"})
        assert ok.status_code == 200 and ok.json()["outcome"] == "finished", ok.text
        status = c.get("/api/rate-limit").json()
    asked = [json.dumps(r) for r in site.llm_requests()]  # (an earlier test's queued reply may come too)
    assert any("briefly" in r for r in asked) and not any("harbours" in r for r in asked)  # refused: never asked
    assert "user-tokens" in json.dumps(status)
