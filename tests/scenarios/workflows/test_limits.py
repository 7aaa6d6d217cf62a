"""Runs a client starts spend as their user: each agent step takes from the same rate limits a send
would (child runs too), and a refused step fails as its retry policy says; runs started by server
code are the app's own and are not limited."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.stack import SECRET, Stack, run_stack
from threadline import RunView, Threadline
from threadline.shared.auth import mint

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"RATE_LIMIT_SENDS_PER_MINUTE": "1", "RATE_LIMIT_BURST": "1", "WORKFLOW_POLL_MS": "50", "WORKERS": "1"}
    with run_stack(tmp_path_factory.mktemp("wf-limits"), webs=1, env=env) as stack:
        yield stack


@pytest.fixture
async def tl(limited: Stack) -> AsyncIterator[Threadline]:
    async with Threadline(limited.settings(APP_MODULE="tests.support.agents",
                                                **{k: v for k, v in limited.env.items() if k.startswith("RATE_")})) as client:
        yield client


async def ended(tl: Threadline, run_id: str) -> RunView:
    deadline = time.monotonic() + 30
    while (view := await tl.workflow_run(run_id)).status in ("running", "queued"):
        assert time.monotonic() < deadline, view
        await _sleep()
    return view


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


def client_of(stack: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {mint(SECRET, user)}"}, timeout=10)


def spend_the_burst(http: httpx.Client) -> None:
    tid = http.post("/api/threads", json={}).json()["threadId"]
    assert http.post(f"/api/threads/{tid}/messages", json={"prompt": "hi", "agentName": "echo"}).status_code == 201
    held = http.post(f"/api/threads/{tid}/messages", json={"prompt": "again", "agentName": "echo"})
    assert held.status_code == 429, held.text  # the user is held at the send limit
    deadline = time.monotonic() + 30
    while not [m for m in http.get(f"/api/threads/{tid}/messages").json()["page"]
               if m["role"] == "assistant" and m["status"] == "success"]:  # its reply is done: no model call after
        assert time.monotonic() < deadline, "no reply"
        time.sleep(0.05)


@pytest.mark.parametrize("name", ["ask_once", "ask_in_child"])
async def test_a_clients_run_cannot_spend_past_the_users_limit(limited: Stack, tl: Threadline, name: str) -> None:
    user = f"spender-{name}"
    with client_of(limited, user) as http:
        spend_the_burst(http)
        before = len(limited.llm_requests())
        started = http.post("/api/workflows", json={"name": name, "args": {}})
        assert started.status_code == 201, started.text
        view = await ended(tl, started.json()["runId"])
    assert view.status == "failed" and "rate_limited" in str(view.error), view
    time.sleep(0.3)
    assert len(limited.llm_requests()) == before  # the run's agent step never reached the model


async def test_a_run_server_code_starts_is_the_apps_own(limited: Stack, tl: Threadline) -> None:
    user = "held-but-served"
    with client_of(limited, user) as http:
        spend_the_burst(http)
        run_id = await tl.start_workflow("ask_once", user, {})
        view = await ended(tl, run_id)
    assert view.status == "completed", view
