"""useChat's transport, unchanged: the npm ``ai`` package's own chat (AbstractChat, what React's
useChat wraps) and DefaultChatTransport talk to /api/chat of real processes; the SDK parses every
chunk with its own schema and builds the messages with its own reader. One conversation per part
type: text, tools, reasoning, objects, a human tool answered from the page, stop, abort, error,
resume after a reload, regenerate."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.support.ai_sdk import SDKS, run_node
from tests.support.stack import SECRET, Stack
from threadline.shared.auth import mint

_sdk: dict[str, str] = {}


@pytest.fixture(autouse=True, params=list(SDKS))
def sdk(request: pytest.FixtureRequest) -> str:
    """Each test runs with the 6.x line (Node 20) and the current major (Node 22)."""
    _sdk["name"] = request.param
    return str(request.param)


def drive(stack: Stack, thread_id: str, steps: list[dict[str, Any]], **plan: Any) -> list[dict[str, Any]]:
    """Run the SDK's chat through ``steps``; what it held after each."""
    full = {"base": stack.web, "token": mint(SECRET, "sdk-user"), "threadId": thread_id, "steps": steps, **plan}
    done = run_node(_sdk["name"], "chat_driver.mjs", json.dumps(full))
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]


def new_thread(stack: Stack) -> str:
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    return str(httpx.post(f"{stack.web}/api/threads", json={"title": "sdk"}, headers=headers).json()["threadId"])


def thread_messages(stack: Stack, thread_id: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    page = httpx.get(f"{stack.web}/api/threads/{thread_id}/messages?numItems=50", headers=headers).json()["page"]
    return list(reversed(page))


def assistant(outcome: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in reversed(outcome["messages"]) if m["role"] == "assistant")


def kinds(message: dict[str, Any]) -> list[str]:
    return [p["type"] for p in message["parts"]]


def text_of(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


def test_text_streams_into_one_assistant_message(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["Hello ", "from ", "the ", "server."]})
    (out,) = drive(llm, new_thread(llm), [{"do": "send", "text": "hi"}], agentName="echo")
    assert out["status"] == "ready" and out["error"] is None
    assert out["chunks"][:3] == ["start", "start-step", "text-start"]
    assert out["chunks"][-3:] == ["text-end", "finish-step", "finish"]
    reply = assistant(out)
    assert kinds(reply) == ["step-start", "text"] and text_of(reply) == "Hello from the server."
    assert [m["role"] for m in out["messages"]] == ["user", "assistant"]


def test_a_messages_metadata_is_saved_and_read_back_after_a_reload(llm: Stack) -> None:
    """The SDK's sendMessage({text, metadata}): stored as the message's metadata, shown by the
    WebSocket's records and by the history a reloaded page reads."""
    llm.script({"kind": "text", "chunks": ["ok"]})
    thread_id = new_thread(llm)
    (out,) = drive(llm, thread_id, [{"do": "send", "text": "hi", "metadata": {"lang": "pt", "draft": 2}}],
                   agentName="echo")
    assert out["status"] == "ready", out
    stored = thread_messages(llm, thread_id)
    assert [(m["role"], m["metadata"]) for m in stored] == [("user", {"lang": "pt", "draft": 2}), ("assistant", None)]
    history = _history(llm, thread_id).json()["messages"]
    assert history[0]["metadata"] == {"lang": "pt", "draft": 2} and "metadata" not in history[1]


def test_tool_calls_and_results_are_tool_parts_across_steps(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny ", "in Oslo."]})
    (out,) = drive(llm, new_thread(llm), [{"do": "send", "text": "weather?"}], agentName="tools")
    assert {"tool-input-start", "tool-input-delta", "tool-input-available", "tool-output-available"} <= set(out["chunks"])
    reply = assistant(out)
    assert kinds(reply) == ["step-start", "tool-weather", "step-start", "text"]
    tool = reply["parts"][1]
    assert tool["state"] == "output-available" and tool["input"] == {"city": "Oslo"}
    assert tool["output"]["sky"] == "sunny"
    assert text_of(reply) == "Sunny in Oslo."


def test_reasoning_is_a_reasoning_part(llm: Stack) -> None:
    llm.script({"kind": "transcript", "name": "deepseek_reasoner_answer"})
    (out,) = drive(llm, new_thread(llm), [{"do": "send", "text": "sunny?"}], agentName="deepseek")
    reply = assistant(out)
    reasoning = [p for p in reply["parts"] if p["type"] == "reasoning"]
    assert reasoning and "sunny" in reasoning[0]["text"] and reasoning[0]["state"] == "done"
    assert "reasoning-delta" in out["chunks"] and text_of(reply).startswith("It is sunny")


def test_a_structured_object_is_one_data_part_replaced_as_it_grows(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ['{"city": ', '"Rome", ', '"days": 3}'], "delay_ms": 60})
    (out,) = drive(llm, new_thread(llm), [{"do": "send", "text": "plan"}], agentName="planner")
    reply = assistant(out)
    objects = [p for p in reply["parts"] if p["type"] == "data-object"]
    assert len(objects) == 1 and objects[0]["data"] == {"city": "Rome", "days": 3}  # replaced in place
    assert out["chunks"].count("data-object") >= 2


def test_a_human_tool_is_answered_through_the_sdks_tool_output_and_the_reply_goes_on(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "approve", "arguments": '{"city": "Rome"}'}]},
               {"kind": "text", "chunks": ["Booked ", "Rome."]})
    thread_id = new_thread(llm)
    (out,) = drive(llm, thread_id, [{"do": "send", "text": "book Rome"}], agentName="tools",
                   answerTools={"approve": "yes, go ahead"})
    assert out["status"] == "ready" and out["error"] is None
    reply = assistant(out)
    tool = next(p for p in reply["parts"] if p["type"] == "tool-approve")
    assert tool["state"] == "output-available" and tool["output"] == "yes, go ahead"
    assert text_of(reply) == "Booked Rome."
    stored = thread_messages(llm, thread_id)
    results = [p for m in stored if m["role"] == "tool" for p in m["parts"] if p["type"] == "tool-result"]
    assert [r["result"] for r in results] == ["yes, go ahead"]  # the server kept the page's answer once
    assert stored[-1]["text"] == "Booked Rome." and stored[-1]["status"] == "success"


def test_stop_aborts_the_reply_on_the_server(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": [f"w{i} " for i in range(200)], "delay_ms": 30})
    thread_id = new_thread(llm)
    (out,) = drive(llm, thread_id, [{"do": "stop", "text": "long"}], agentName="echo")
    assert out["status"] == "ready"
    assert text_of(assistant(out)).startswith("w0 ")
    import time

    deadline = time.monotonic() + 15
    while True:
        reply = thread_messages(llm, thread_id)[-1]
        if reply["role"] == "assistant" and reply["status"] != "pending":
            break
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)
    assert reply["status"] == "failed" and reply["error"] == "aborted"
    assert len(reply["text"].split()) < 200  # it stopped before the end


def test_an_abort_from_elsewhere_ends_the_stream_with_an_abort_chunk(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": [f"w{i} " for i in range(100)], "delay_ms": 30})
    thread_id = new_thread(llm)
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    import threading
    import time

    def abort_soon() -> None:  # once the reply has begun to stream (the Node client may start slowly)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = httpx.get(f"{llm.web}/api/threads/{thread_id}/messages?streams=true", headers=headers).json()
            if any(s["status"] == "streaming" and s["text"] for s in listed.get("streams", [])):
                break
            time.sleep(0.05)
        httpx.post(f"{llm.web}/api/threads/{thread_id}/abort", headers=headers)

    threading.Thread(target=abort_soon).start()
    (out,) = drive(llm, thread_id, [{"do": "send", "text": "long"}], agentName="echo")
    assert out["chunks"][-1] == "abort" and "finish" not in out["chunks"]
    assert out["status"] == "ready" and 0 < len(text_of(assistant(out)).split()) < 100


def test_a_failed_reply_is_an_error_chunk(llm: Stack) -> None:
    llm.script(*[{"kind": "status", "status": 400, "body": {"error": {"message": "bad model request"}}}] * 4)
    (out,) = drive(llm, new_thread(llm), [{"do": "send", "text": "fail"}], agentName="echo")
    assert out["chunks"][-1] == "error"
    assert out["status"] == "error" and "bad model request" in out["error"]


def test_a_reloaded_page_resumes_the_running_reply_from_its_start(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": [f"w{i} " for i in range(60)], "delay_ms": 40})
    thread_id = new_thread(llm)
    stopped, resumed = drive(llm, thread_id, [{"do": "stop", "text": "long"}, {"do": "resume"}], agentName="echo",
                             keepRunning=True)
    assert len(text_of(assistant(stopped)).split()) < 60
    assert resumed["chunks"][0] == "start" and resumed["chunks"][-1] == "finish"
    assert text_of(assistant(resumed)) == "".join(f"w{i} " for i in range(60))  # from the start, to the end
    (after,) = drive(llm, thread_id, [{"do": "resume"}], agentName="echo")
    assert after["messages"] == []  # nothing runs: 204, nothing to show


def test_regenerate_answers_the_last_prompt_again(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["first"]}, {"kind": "text", "chunks": ["second"]})
    thread_id = new_thread(llm)
    first, again = drive(llm, thread_id, [{"do": "send", "text": "q"}, {"do": "regenerate"}], agentName="echo")
    assert text_of(assistant(first)) == "first" and text_of(assistant(again)) == "second"
    assert [m["role"] for m in again["messages"]] == ["user", "assistant"]
    prompts = [m for m in thread_messages(llm, thread_id) if m["role"] == "user"]
    assert len(prompts) == 1  # the server kept one prompt; its new reply replaced the first


def test_an_edit_through_the_sdk_is_a_new_version_answered_on_its_own_branch(llm: Stack) -> None:
    """sendMessage({text, messageId}): the SDK drops what followed the message; the server keeps it
    as a branch (messages.edit) and answers the new version from the history before it."""
    llm.script({"kind": "text", "chunks": ["one"]}, {"kind": "text", "chunks": ["two"]},
               {"kind": "text", "chunks": ["one, again"]})
    thread_id = new_thread(llm)
    heard = len(llm.llm_requests())
    *_, edited = drive(llm, thread_id, [{"do": "send", "text": "q1"}, {"do": "send", "text": "q2"},
                                        {"do": "edit", "index": 0, "text": "q1, better"}], agentName="echo")
    assert [m["role"] for m in edited["messages"]] == ["user", "assistant"]
    assert text_of(assistant(edited)) == "one, again"
    assert [m["text"] for m in thread_messages(llm, thread_id)] == ["q1, better", "one, again"]
    asked = [m["content"] for m in llm.llm_requests()[-1]["messages"] if m["role"] == "user"]
    assert len(llm.llm_requests()) == heard + 3 and asked == ["q1, better"]
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    forks = httpx.get(f"{llm.web}/api/threads/{thread_id}/branches", headers=headers).json()["forks"]
    assert [[(v["order"], v["active"]) for v in f["versions"]] for f in forks] == [[(1, False), (3, True)]]


def test_a_resent_message_is_stored_once(llm: Stack) -> None:
    thread_id = new_thread(llm)
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    body = {"id": thread_id, "messages": [{"id": "ui-1", "role": "user", "parts": [{"type": "text", "text": "once"}]}],
            "trigger": "submit-message", "agentName": "echo"}
    for _ in range(2):
        with httpx.stream("POST", f"{llm.web}/api/chat", json=body, headers=headers, timeout=30) as r:
            assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
            lines = [line for line in r.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
    assert [m["text"] for m in thread_messages(llm, thread_id) if m["role"] == "user"] == ["once"]
    other = httpx.post(f"{llm.web}/api/chat", json=body, headers={"Authorization": f"Bearer {mint(SECRET, 'eve')}"})
    assert other.status_code == 404


def test_an_idle_stream_is_kept_alive_with_comment_pings(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["slow ", "reply"], "delay_ms": 1500})
    thread_id = new_thread(llm)
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    body = {"id": thread_id, "messages": [{"id": "p", "role": "user", "parts": [{"type": "text", "text": "?"}]}],
            "agentName": "echo"}
    with httpx.stream("POST", f"{llm.web}/api/chat", json=body, headers=headers, timeout=30) as r:
        lines = [line for line in r.iter_lines() if line]
    first, last = lines.index(next(x for x in lines if '"text-delta"' in x)), len(lines) - 1
    assert ": ping" in lines[:first] or ": ping" in lines[first:last]  # SSE comments while nothing else came
    (out,) = drive(llm, thread_id, [{"do": "resume"}], agentName="echo")
    assert out["messages"] == []  # the SDK's reader skips the pings (and nothing runs now)


def test_a_file_sent_inline_is_kept_and_read_by_the_model(llm: Stack) -> None:
    import base64

    thread_id = new_thread(llm)
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    note = base64.b64encode(b"The secret word is pineapple.").decode()
    body = {"id": thread_id, "agentName": "echo", "messages": [{"id": "f1", "role": "user", "parts": [
        {"type": "file", "mediaType": "text/plain", "filename": "note.txt", "url": f"data:text/plain;base64,{note}"},
        {"type": "text", "text": "What does the note say?"}]}]}
    with httpx.stream("POST", f"{llm.web}/api/chat", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert "pineapple" in json.dumps(llm.llm_requests()[-1]["messages"])  # the model read the file
    stored = next(m for m in thread_messages(llm, thread_id) if m["role"] == "user")
    file_part = next(p for p in stored["parts"] if p["type"] == "file")
    assert file_part["fileId"] and file_part["filename"] == "note.txt"
    # after a reload the file is a link a page on another origin can load: absolute, signed, no token
    shown = next(p for m in _history(llm, thread_id).json()["messages"] for p in m["parts"] if p["type"] == "file")
    assert shown["url"].startswith(llm.web + "/api/files/"), shown
    assert httpx.get(shown["url"]).content == b"The secret word is pineapple."
    broken = {**body, "messages": [{"id": "f2", "role": "user", "parts": [
        {"type": "file", "mediaType": "text/plain", "url": "data:text/plain;base64,%%%"}]}]}
    refused = httpx.post(f"{llm.web}/api/chat", json=broken, headers=headers)
    assert refused.status_code == 400 and "data: URL" in refused.json()["message"]


def _post_chat(stack: Stack, body: dict[str, Any]) -> list[str]:
    """POST /api/chat and read the whole UI message stream: its chunk types."""
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    chunks = []
    with httpx.stream("POST", f"{stack.web}/api/chat", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunks.append(json.loads(line[6:])["type"])
    return chunks


def test_messages_without_ids_are_each_stored_and_answered(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["one"]}, {"kind": "text", "chunks": ["two"]})
    thread_id = new_thread(llm)
    for text in ("first question", "second question"):
        body = {"id": thread_id, "messages": [{"role": "user", "parts": [{"type": "text", "text": text}]}],
                "trigger": "submit-message", "agentName": "echo"}
        assert _post_chat(llm, body)[-1] == "finish"
    stored = thread_messages(llm, thread_id)
    assert [(m["role"], m["text"]) for m in stored] == [
        ("user", "first question"), ("assistant", "one"), ("user", "second question"), ("assistant", "two")]


def test_every_regenerate_is_a_new_reply(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["first"]}, {"kind": "text", "chunks": ["second"]},
               {"kind": "text", "chunks": ["third"]})
    thread_id = new_thread(llm)
    first, again, third = drive(llm, thread_id, [{"do": "send", "text": "q"}, {"do": "regenerate"},
                                                 {"do": "regenerate"}], agentName="echo")
    assert [text_of(assistant(o)) for o in (first, again, third)] == ["first", "second", "third"]
    assert third["status"] == "ready" and third["error"] is None
    assert len(llm.llm_requests()) == 3


def test_a_request_closed_before_its_reply_starts_stops_it(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["slow ", "first ", "reply"], "delay_ms": 400},
               {"kind": "text", "chunks": ["never asked for"]})
    thread_id = new_thread(llm)
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}
    first = {"id": thread_id, "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "a"}]}],
             "trigger": "submit-message", "agentName": "echo", "keepRunning": True}
    with httpx.stream("POST", f"{llm.web}/api/chat", json=first, headers=headers, timeout=30) as r:
        next(line for line in r.iter_lines() if "text-delta" in line)  # the first reply holds the thread
    queued = {**first, "messages": [*first["messages"], {"id": "u2", "role": "user",
                                                          "parts": [{"type": "text", "text": "b"}]}],
              "keepRunning": False}
    with httpx.stream("POST", f"{llm.web}/api/chat", json=queued, headers=headers, timeout=30) as r:
        assert r.status_code == 200  # queued behind the first: stop() before its stream opens
    deadline = time.monotonic() + 20
    while True:
        replies = [m for m in thread_messages(llm, thread_id) if m["role"] == "assistant"]
        if [m["status"] for m in replies] == ["success", "failed"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(m["order"], m["status"], m.get("error")) for m in replies] == [(1, "success", None),
                                                                            (2, "failed", "aborted")]
    assert len(llm.llm_requests()) == 1  # the second never reached the model


def _history(stack: Stack, thread_id: str, user: str = "sdk-user", **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {mint(SECRET, user)}"}
    return httpx.get(f"{stack.web}/api/chat/{thread_id}/messages", params=params, headers=headers)


def _comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a page shows of the SDK's messages (its reader adds provider metadata we never send)."""
    drop = {"providerMetadata", "callProviderMetadata"}
    return [{"id": m["id"], "role": m["role"], "parts": [{k: v for k, v in p.items() if k not in drop}
                                                           for p in m["parts"]]} for m in messages]


def test_a_new_chat_id_starts_a_thread_for_the_caller_only(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["fresh"]})
    chat_id = "Xq3ZrT9aLm2Kp8Vw"  # as useChat's generateId makes them
    body = {"id": chat_id, "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}],
            "trigger": "submit-message", "agentName": "echo"}
    assert _post_chat(llm, body)[-1] == "finish"
    assert [m["text"] for m in thread_messages(llm, chat_id)] == ["hi", "fresh"]
    other = httpx.post(f"{llm.web}/api/chat", json=body, headers={"Authorization": f"Bearer {mint(SECRET, 'eve')}"})
    assert other.status_code == 404
    assert _history(llm, chat_id, "eve").status_code == 404
    bad = httpx.post(f"{llm.web}/api/chat", json={**body, "id": "no-no"},
                     headers={"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"})
    assert bad.status_code == 400 and "chat id" in bad.json()["message"]


def test_the_history_after_a_reload_is_what_the_stream_gave(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny ", "in Oslo."]},
               {"kind": "text", "chunks": ["And ", "mild."]})
    thread_id = new_thread(llm)
    *_, last = drive(llm, thread_id, [{"do": "send", "text": "weather?"}, {"do": "send", "text": "and tomorrow?"}],
                     agentName="tools")
    history = _history(llm, thread_id).json()
    assert history["isDone"] and history["continueCursor"] == ""
    assert _comparable(history["messages"]) == _comparable(last["messages"])
    older = _history(llm, thread_id, numItems=1).json()  # a page of one: the newest exchange, whole
    assert not older["isDone"] and [m["role"] for m in older["messages"]] == ["user", "assistant"]
    rest = _history(llm, thread_id, numItems=100, cursor=older["continueCursor"]).json()
    assert [m["id"] for m in rest["messages"] + older["messages"]] == [m["id"] for m in history["messages"]]


@pytest.mark.parametrize(("agent", "script"), [
    ("deepseek", {"kind": "transcript", "name": "deepseek_reasoner_answer"}),
    ("planner", {"kind": "text", "chunks": ['{"city": ', '"Rome", ', '"days": 3}']}),
])
def test_reasoning_and_objects_read_back_as_they_streamed(llm: Stack, agent: str, script: dict[str, Any]) -> None:
    llm.script(script)
    thread_id = new_thread(llm)
    (out,) = drive(llm, thread_id, [{"do": "send", "text": "go"}], agentName=agent)
    assert _comparable(_history(llm, thread_id).json()["messages"]) == _comparable(out["messages"])


@pytest.mark.parametrize("approved", [True, False])
def test_an_approval_is_asked_and_answered_through_the_sdks_own_approval_parts(llm: Stack, approved: bool) -> None:
    llm.store().delete("test:transfers")
    llm.script({"kind": "tools", "calls": [{"name": "transfer", "arguments": '{"to": "bob", "amount": 500}'}]},
               {"kind": "text", "chunks": ["Sent." if approved else "Not sent."]})
    thread_id = new_thread(llm)
    decision = {"approved": approved, **({} if approved else {"reason": "too much"})}
    (out,) = drive(llm, thread_id, [{"do": "send", "text": "pay bob"}], agentName="banker",
                   decideTools={"transfer": decision})
    assert out["status"] == "ready" and out["error"] is None, out
    reply = assistant(out)
    tool = next(p for p in reply["parts"] if p["type"] == "tool-transfer")
    if approved:
        assert tool["state"] == "output-available" and tool["output"] == {"sent": 500, "to": "bob"}
        assert tool["approval"]["approved"] is True
    else:
        assert tool["state"] == "output-denied" and tool["approval"] == {**tool["approval"], "approved": False,
                                                                         "reason": "too much"}
    assert text_of(reply).endswith("Sent." if approved else "Not sent.")
    assert len(llm.store().lrange("test:transfers", 0, -1)) == (1 if approved else 0)
    stored = thread_messages(llm, thread_id)
    decisions = [p for m in stored for p in m["parts"] if p["type"] == "tool-approval-response"]
    assert [(d["approved"], d.get("reason")) for d in decisions] == [(approved, decision.get("reason"))]
    history = httpx.get(f"{llm.web}/api/chat/{thread_id}/messages",
                        headers={"Authorization": f"Bearer {mint(SECRET, 'sdk-user')}"}).json()["messages"]
    reloaded = next(p for p in history[-1]["parts"] if p["type"] == "tool-transfer")
    assert reloaded["state"] == tool["state"] and reloaded["approval"]["approved"] is approved
