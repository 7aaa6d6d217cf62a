"""Tools, human in the loop, structured output, usage, and model failures, end to end."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.scenarios.replies.helpers import new_thread, open_tab, reply_of, token, watch_args
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio


def by_step(value: dict, order: int = 1) -> list[dict]:  # type: ignore[type-arg]
    return sorted((m for m in value["page"] if m["order"] == order), key=lambda m: m["stepOrder"])


async def run_prompt(llm: Stack, agent: str, prompt: str | None = None, order: int = 1):  # type: ignore[no-untyped-def]
    import uuid

    prompt = prompt or f"go {uuid.uuid4().hex[:8]}"
    tab = await open_tab(llm.web, client_id="t")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    await tab.mutate("messages.send", {"threadId": tid, "prompt": prompt, "agentName": agent})
    frame = await tab.wait_result("m", lambda v: bool(v["streams"]) and v["streams"][-1]["status"] != "streaming",
                                 timeout=60)
    return tab, tid, frame


async def test_multi_step_tool_calls_are_saved_at_rising_step_orders(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["It is ", "sunny."]})
    tab, tid, frame = await run_prompt(llm, "tools", "weather in Oslo?")
    steps = by_step(frame["value"])
    assert [(m["role"], m["stepOrder"], m["status"]) for m in steps] == [
        ("user", 0, "success"), ("assistant", 1, "success"), ("tool", 2, "success"), ("assistant", 3, "success")]
    call = steps[1]["parts"][0]
    assert (call["type"], call["toolName"], call["args"]) == ("tool-call", "weather", {"city": "Oslo"})
    result = steps[2]["parts"][0]
    assert result["result"] == {"city": "Oslo", "sky": "sunny", "thread": tid, "user": "alice"}
    assert steps[3]["text"] == "It is sunny."
    # the stream's deltas carry the call and its result (a tab may get some of them inside a result
    # instead, when a re-run read the stream after they were written: its log has them all)
    async with httpx.AsyncClient(base_url=llm.web, timeout=10) as http:
        body = (await http.get(f"/api/streams/{frame['value']['streams'][-1]['streamId']}",
                               headers={"Authorization": f"Bearer {token('alice')}"})).text
    kinds = [p["type"] for line in body.splitlines() if line.startswith("data: ")
             for p in json.loads(line[6:]).get("parts", [])]
    assert "tool-call" in kinds and "tool-result" in kinds
    assert any(d["type"] == "delta" for d in tab.frames)  # and the tab watched it stream
    second = llm.llm_requests()[1]["messages"]
    assert second[-1]["role"] == "tool" and json.loads(second[-1]["content"])["sky"] == "sunny"
    assert second[-2]["tool_calls"][0]["function"]["name"] == "weather"
    await tab.close()


async def test_a_tool_that_raises_becomes_an_error_result_the_model_sees(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "boom", "arguments": '{"city": "Nowhere"}'},
                                           {"name": "weather", "arguments": '{"bad": 1}'}]},
               {"kind": "text", "chunks": ["Sorry."]})
    tab, _, frame = await run_prompt(llm, "tools")
    steps = by_step(frame["value"])
    results = [m["parts"][0] for m in steps if m["role"] == "tool"]
    assert results[0]["isError"] and "no weather station in Nowhere" in results[0]["result"]
    assert results[1]["isError"] and "invalid arguments" in results[1]["result"]
    assert steps[-1]["text"] == "Sorry." and steps[-1]["status"] == "success"
    await tab.close()


async def test_a_tool_without_handler_waits_for_a_person_then_continues(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "approve", "arguments": '{"city": "Rome"}'}]})
    tab, tid, frame = await run_prompt(llm, "tools", "book Rome")
    steps = by_step(frame["value"])
    assert [m["role"] for m in steps] == ["user", "assistant"]
    assert frame["value"]["streams"][-1]["status"] == "finished"
    call = steps[1]["parts"][0]
    llm.script({"kind": "text", "chunks": ["Booked ", "Rome."]})
    sent = await tab.mutate("messages.send", {
        "threadId": tid, "agentName": "tools", "promptMessageId": steps[0]["messageId"],
        "message": {"role": "tool", "content": [{"type": "tool-result", "toolCallId": call["toolCallId"],
                                                 "toolName": "approve", "result": "yes, go ahead"}]},
    })
    assert sent["ok"], sent
    frame = await tab.wait_result("m", lambda v: any(m["text"] == "Booked Rome." for m in v["page"]))
    assert [(m["role"], m["stepOrder"]) for m in by_step(frame["value"])] == [
        ("user", 0), ("assistant", 1), ("tool", 2), ("assistant", 3)]
    context = llm.llm_requests()[-1]["messages"]
    assert context[-1] == {"role": "tool", "tool_call_id": call["toolCallId"], "content": "yes, go ahead"}
    await tab.close()


async def test_structured_output_streams_partial_objects_and_saves_the_object(llm: Stack) -> None:
    doc = '{"city": "Lisbon", "days": 3}'
    llm.script({"kind": "text", "chunks": [doc[i:i + 4] for i in range(0, len(doc), 4)], "delay_ms": 20})
    tab, _, frame = await run_prompt(llm, "planner")
    reply = reply_of(frame["value"], 1)
    assert reply["status"] == "success"
    assert {"type": "object", "object": {"city": "Lisbon", "days": 3}} in reply["parts"]
    objects = [p["object"] for d in tab.frames if d["type"] == "delta" for p in d["parts"] if p["type"] == "object"]
    assert objects[-1] == {"city": "Lisbon", "days": 3} and len(objects) >= 2
    assert llm.llm_requests()[0]["response_format"]["json_schema"]["schema"]["required"] == ["city", "days"]
    await tab.close()


async def test_structured_output_that_does_not_validate_fails_the_reply(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ['{"city": 5}']})
    tab, _, frame = await run_prompt(llm, "planner")
    reply = reply_of(frame["value"], 1)
    assert reply["status"] == "failed" and "output type" in reply["error"]
    await tab.close()


async def test_usage_is_saved_and_handed_to_the_usage_handler(llm: Stack) -> None:
    client = llm.store()
    client.delete("test:usage")
    llm.script({"kind": "text", "chunks": ["a ", "b ", "c"]})
    tab, tid, frame = await run_prompt(llm, "echo")
    assert reply_of(frame["value"], 1)["usage"] == {"promptTokens": 11, "completionTokens": 3, "totalTokens": 14,
                                                    "cachedTokens": 0, "reasoningTokens": 0, "estimated": False}
    events = [json.loads(x) for x in client.lrange("test:usage", 0, -1)]
    client.close()
    assert events == [{"user": "alice", "thread": tid, "agent": "echo", "model": "fake", "total": 14}]
    await tab.close()


async def test_429_then_success_is_retried(llm: Stack) -> None:
    llm.script({"kind": "status", "status": 429, "retry_after": 0}, {"kind": "status", "status": 503},
               {"kind": "text", "chunks": ["fine"]})
    tab, _, frame = await run_prompt(llm, "echo")
    assert reply_of(frame["value"], 1)["text"] == "fine"
    assert len(llm.llm_requests()) == 3
    await tab.close()


@pytest.mark.parametrize(("script", "error"), [
    ([{"kind": "status", "status": 500}] * 4, "unavailable after 4 attempts"),
    ([{"kind": "status", "status": 400}], "answered 400"),
    ([{"kind": "malformed", "chunks": ["half "]}], "malformed"),
    ([{"kind": "disconnect", "chunks": ["cut ", "off "]}], "broke off"),
    ([{"kind": "hang", "chunks": ["then ", "silence "]}], "ReadTimeout"),
])
async def test_model_failures_fail_the_reply_with_a_clear_error(llm: Stack, script: list, error: str) -> None:  # type: ignore[type-arg]
    llm.script(*script)
    tab, _, frame = await run_prompt(llm, "echo")
    reply = reply_of(frame["value"], 1)
    served = [(r["messages"][-1].get("content"), r["_served"]) for r in llm.llm_requests()]
    assert reply["status"] == "failed" and error in reply["error"], (reply, served)
    assert frame["value"]["streams"][-1]["status"] == "aborted"
    await tab.close()


async def test_unknown_agent_is_a_bad_request_and_saves_nothing(llm: Stack) -> None:
    tab = await open_tab(llm.web, client_id="t")
    tid = await new_thread(tab)
    out = await tab.mutate("messages.send", {"threadId": tid, "prompt": "x", "agentName": "nobody"})
    assert out["error"]["code"] == "bad_request" and "nobody" in out["error"]["message"]
    page = await tab.subscribe("m", "messages.list", {"threadId": tid})
    assert page["value"]["page"] == []
    await tab.close()


async def test_over_budget_the_oldest_messages_are_summarized_into_the_thread(llm: Stack) -> None:
    import httpx

    from tests.scenarios.replies.helpers import token

    tab = await open_tab(llm.web, client_id="t")
    tid = await new_thread(tab)
    await tab.subscribe("m", "messages.list", watch_args(tid))
    for text in ("my name is Ada and I like owls", "I live in Porto"):
        await tab.mutate("messages.send", {"threadId": tid, "prompt": text, "generate": False})
    llm.script({"kind": "text", "chunks": ["Ada likes owls."]},               # summary of order 1
               {"kind": "text", "chunks": ["Ada likes owls; lives in Porto."]},  # then of order 2
               {"kind": "text", "chunks": ["Hello Ada."]})                     # the reply
    await tab.mutate("messages.send", {"threadId": tid, "prompt": "who am I, in brief?", "agentName": "brief"})
    await tab.wait_result("m", lambda v: reply_of(v, 3, ("success",)) is not None)
    async with httpx.AsyncClient(base_url=llm.web) as http:
        thread = (await http.get(f"/api/threads/{tid}", headers={"Authorization": f"Bearer {token('alice')}"})).json()
    assert thread["summary"] == "Ada likes owls; lives in Porto."
    assert thread["metadata"]["summarizedThroughOrder"] == 2
    reply_request = llm.llm_requests()[-1]["messages"]
    contents = [m["content"] for m in reply_request]
    assert "Summary of the earlier conversation: Ada likes owls; lives in Porto." in contents
    assert "my name is Ada and I like owls" not in contents and contents[-1] == "who am I, in brief?"
    await tab.close()


async def test_the_raw_handler_sees_the_request_and_every_chunk(llm: Stack) -> None:
    client = llm.store()
    client.delete("test:raw")
    llm.script({"kind": "text", "chunks": ["one ", "two"]})
    tab, _, _ = await run_prompt(llm, "raw", "hello raw")
    seen = [json.loads(x) for x in client.lrange("test:raw", 0, -1)]
    client.close()
    assert seen[0]["kind"] == "request" and seen[0]["body"]["messages"][-1]["content"] == "hello raw"
    chunks = [s["body"] for s in seen[1:]]
    assert all(s["kind"] == "chunk" for s in seen[1:])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c.get("choices")) == "one two"
    assert any(c.get("usage") for c in chunks)
    await tab.close()
