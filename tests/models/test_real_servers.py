"""What a web app meets with a real local model server (llama-cpp-python's and llama.cpp's, each
serving Gemma 3 270M) through the whole product: a reply streamed to two tabs whose deltas are
the stored text, its usage counted (reported or estimated), structured output, a tool call's round
trip, an abort, concurrent replies, and a server that dies mid-reply."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.models.conftest import MODEL, SERVERS, TOKEN_LIMIT, start
from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support import procs
from tests.support.stack import Stack, run_stack
from tests.support.wsutil import Tab
from threadline import Threadline
from threadline.shared.records import Message, TextPart, ToolCallPart, ToolResultPart

pytestmark = [pytest.mark.anyio, pytest.mark.model_server, pytest.mark.timeout(420)]  # (beyond its own waits)

TIMEOUT = 180.0  # a small model on two cores, maybe with other tests beside it


def sent_text(tab: Tab, stream_id: str) -> str:
    return "".join(p["text"] for f in tab.frames if f["type"] == "delta" and f["streamId"] == stream_id
                   for p in f["parts"] if p["type"] == "text")


async def ask(stack: Stack, agent: str, prompt: str, user: str = "alice",
              timeout: float = TIMEOUT) -> tuple[Tab, str, dict[str, Any]]:
    """A new thread, ``prompt`` sent to ``agent``; the tab and the thread once the reply has ended."""
    tab = await open_tab(stack.web, user=user, client_id="real")
    tid = await new_thread(tab)
    await tab.subscribe(tid, "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": prompt, "agentName": agent})
    frame = await tab.wait_result(tid, lambda v: reply_of(v, 1) is not None and not any(
        s["status"] == "streaming" for s in v["streams"]), timeout=timeout)
    return tab, tid, frame["value"]


async def long_reply_begun(stack: Stack) -> tuple[Tab, str, dict[str, Any]]:
    """A tab watching a thread whose long reply has begun: the tab, the thread, its first text delta."""
    tab = await open_tab(stack.web, client_id="long")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "agentName": "local-long",
                                       "prompt": "Write a long story about a lighthouse keeper."})
    first = await tab.wait(lambda f: f["type"] == "delta" and any(p["type"] == "text" for p in f["parts"]),
                           timeout=TIMEOUT)
    return tab, tid, first


async def test_a_reply_streams_to_two_tabs_and_the_deltas_are_the_stored_text(local: Stack) -> None:
    a = await open_tab(local.webs[0], client_id="a")
    b = await open_tab(local.webs[0], client_id="b")
    tid = await new_thread(a)
    for tab in (a, b):
        await tab.subscribe("m", "messages.list", watch_args(tid))
    await a.mutate("messages.send", {"threadId": tid, "prompt": "What is the capital of France?",
                                     "agentName": "local"})
    for tab in (a, b):
        done = await tab.wait_result("m", lambda v: reply_of(v, 1) is not None, timeout=TIMEOUT)
        reply = reply_of(done["value"], 1)
        assert reply["status"] == "success" and reply["text"].strip(), reply
        stream_id = done["value"]["streams"][-1]["streamId"]
        assert sent_text(tab, stream_id) == reply["text"]
        assert len([f for f in tab.frames if f["type"] == "delta" and f["streamId"] == stream_id]) > 1  # in pieces
    await a.close()
    await b.close()


async def test_usage_is_counted_whether_the_server_reports_it_or_not(local: Stack) -> None:
    tab, _, value = await ask(local, "local", "Name a colour.", user="counted")
    reply = reply_of(value, 1)
    usage = reply["usage"]
    assert reply["status"] == "success" and usage["completionTokens"] > 0 and usage["promptTokens"] > 0, reply
    summary = httpx.get(f"{local.web}/api/usage", headers={"Authorization": f"Bearer {token('counted')}"}).json()
    assert summary["totals"]["output"] == usage["completionTokens"]  # the ledger has it, never nothing
    status = httpx.get(f"{local.web}/api/rate-limit", params={"agentName": "local"},
                       headers={"Authorization": f"Bearer {token('counted')}"}).json()
    (rule,) = [r for r in status["rules"] if r["name"] == TOKEN_LIMIT["name"]]
    assert rule["remaining"] == TOKEN_LIMIT["limit"] - usage["totalTokens"]  # the token limit counted them
    print("usage:", usage)
    await tab.close()


async def test_structured_output_is_a_valid_object(local: Stack) -> None:
    # (up to 400 tokens under a grammar: with both CI passes asking llama-server at once it took over 180 s)
    tab, _, value = await ask(local, "local-planner", "Plan 3 days in Rome.", timeout=TIMEOUT * 2)
    reply = reply_of(value, 1)
    assert reply["status"] == "success", reply
    objects = [p["object"] for p in reply["parts"] if p["type"] == "object"]
    assert len(objects) == 1 and isinstance(objects[0]["city"], str) and isinstance(objects[0]["days"], int)
    await tab.close()


async def test_a_tool_call_goes_round_trip(local: Stack, server_kind: str) -> None:
    if server_kind == "llama-server":
        pytest.skip("llama-server does not make this small model call a tool (forced, it writes chat-template "
                    "tokens as text); the next test sends it a tool step's messages all the same")
    tab, _, value = await ask(local, "local-tools", "What is the weather in Paris?")
    steps = sorted((m for m in value["page"] if m["order"] == 1), key=lambda m: m["stepOrder"])
    results = [p["result"] for m in steps if m["role"] == "tool" for p in m["parts"]]
    assert results and results[0]["sky"] == "sunny", steps
    # the next call carried the assistant's tool-call turn and the result, and the server took it
    assert [m["status"] for m in steps if m["role"] == "assistant"] == ["success", "success"], steps
    await tab.close()


async def test_a_tool_step_in_the_history_is_taken_by_the_server(local: Stack) -> None:
    """What the call after a tool step sends (the assistant's tool-call turn with content "", the
    tool's result), put in a thread's history and sent to the server with the next prompt."""
    async with Threadline(local.settings()) as tl:
        thread = await tl.create_thread("alice", title="tool step")
        prompt = await thread.save_message("What is the weather in Paris?")
        await thread.save_messages([
            Message(message_id="", thread_id=thread.thread_id, role="assistant", agent_name="local", parts=[
                ToolCallPart(tool_call_id="call_1", tool_name="weather", args={"city": "Paris"})]),
            Message(message_id="", thread_id=thread.thread_id, role="tool", parts=[
                ToolResultPart(tool_call_id="call_1", tool_name="weather", result={"city": "Paris", "sky": "sunny"})]),
            Message(message_id="", thread_id=thread.thread_id, role="assistant", agent_name="local",
                    text="It is sunny in Paris.", parts=[TextPart(text="It is sunny in Paris.")]),
        ], prompt_message_id=prompt.message_id)
        tid = thread.thread_id
    tab = await open_tab(local.web, client_id="history")
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "And in Rome?", "agentName": "local-tools-auto"})
    frame = await tab.wait_result("m", lambda v: reply_of(v, 2) is not None, timeout=TIMEOUT)
    reply = reply_of(frame["value"], 2)
    assert reply["status"] == "success", reply  # a refused message shape would fail it (HTTP 500)
    await tab.close()


async def test_an_abort_keeps_what_the_tabs_were_shown(local: Stack) -> None:
    tab, tid, first = await long_reply_begun(local)
    await asyncio.sleep(0.5)
    assert (await tab.mutate("streams.abort", {"threadId": tid}))["value"] == {"aborted": 1}
    frame = await tab.wait_result("m", lambda v: (reply_of(v, 1, ("failed",)) or {}).get("error") == "aborted"
                                  and not any(s["status"] == "streaming" for s in v["streams"]), timeout=TIMEOUT)
    reply = reply_of(frame["value"], 1)
    await asyncio.sleep(0.5)  # the closing delta, sent before the reply was stored
    assert sent_text(tab, first["streamId"]) == reply["text"] and reply["text"]
    await tab.close()


async def test_concurrent_replies_each_end_whole_or_say_they_were_cut(local: Stack) -> None:
    tab = await open_tab(local.web, client_id="many")
    threads = [await new_thread(tab) for _ in range(4)]
    for i, tid in enumerate(threads):
        await tab.subscribe(tid, "messages.list", watch_args(tid))
        await tab.mutate("messages.send", {"threadId": tid, "prompt": f"Say the number {i + 1}.", "agentName": "local"})
    ends = []
    for tid in threads:
        frame = await tab.wait_result(tid, lambda v: reply_of(v, 1) is not None, timeout=TIMEOUT * 2)
        ends.append(reply_of(frame["value"], 1))
    for reply in ends:
        assert (reply["status"] == "success" and reply["text"].strip()) or (
            reply["status"] == "failed" and "finish" in (reply["error"] or "")), reply
    assert any(r["status"] == "success" for r in ends)
    print("concurrent:", json.dumps([(r["status"], len(r["text"])) for r in ends]))
    await tab.close()


@pytest.mark.parametrize("server", SERVERS)
async def test_a_server_that_dies_mid_reply_fails_it_with_what_was_shown(
        server: str, built: dict[str, str], tmp_path: Path) -> None:
    proc, base = start(server, built, tmp_path / "server.log")
    try:
        env = {"LLM_BASE_URL": f"{base}/v1", "LLM_MODEL": MODEL, "LLM_TIMEOUT_S": "120"}
        with run_stack(tmp_path / "stack", env=env) as stack:
            tab, _, first = await long_reply_begun(stack)
            os.killpg(proc.pid, signal.SIGKILL)  # the server is gone mid-stream
            frame = await tab.wait_result("m", lambda v: reply_of(v, 1, ("failed",)) is not None, timeout=TIMEOUT)
            reply = reply_of(frame["value"], 1)
            assert "model" in reply["error"], reply
            assert sent_text(tab, first["streamId"]) == reply["text"] and reply["text"]
            await tab.close()
    finally:
        procs.stop(proc)


@pytest.mark.parametrize("server", SERVERS)
def test_embeddings_from_the_server_find_a_message_by_its_meaning(
        server: str, built: dict[str, str], tmp_path: Path) -> None:
    proc, base = start(server, built, tmp_path / "server.log", embeddings=True)
    try:
        env = {"EMBEDDING_BASE_URL": f"{base}/v1", "EMBEDDING_MODEL": MODEL, "LLM_TIMEOUT_S": "120"}
        with run_stack(tmp_path / "stack", env=env, index=True) as stack, \
                httpx.Client(base_url=stack.web, headers={"Authorization": f"Bearer {token('emb')}"},
                             timeout=60) as c:
            tid = c.post("/api/threads", json={"title": "notes"}).json()["threadId"]
            notes = ["the meeting moved to tuesday", "my locker code is 7791 at the gym",
                     "remember to water the plants", "the printer is out of toner"]
            for note in notes:
                assert c.post(f"/api/threads/{tid}/messages", json={"prompt": note, "generate": False}).is_success
            body = {"prompt": notes[1], "contextOptions": {"recentMessages": 0, "searchOptions": {
                "limit": 1, "textSearch": False, "vectorSearch": True, "messageRange": {"before": 0, "after": 0}}}}
            deadline = time.monotonic() + TIMEOUT
            while True:  # the index process embeds the notes through the server
                found = c.post(f"/api/threads/{tid}/context", json=body).json()["messages"]
                if found:
                    break
                assert time.monotonic() < deadline, (tmp_path / "stack" / "index.log").read_text()[-3000:]
                time.sleep(0.5)
            assert [m["text"] for m in found] == [notes[1]]
    finally:
        procs.stop(proc)
