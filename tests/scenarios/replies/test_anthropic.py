"""Anthropic's Messages API, natively (the anthropic SDK), against a test server that speaks its
documented streaming events, through a worker: text with extended thinking and the prompt cache's
usage, a tool call's round trip as tool_use and tool_result blocks, structured output, errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scenarios.replies.test_agents import by_step, run_prompt
from tests.scenarios.replies.test_providers import final
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio


async def test_text_thinking_and_cache_usage_stream_through(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["Hello ", "there."], "thinking": ["Let me ", "think."],
                "cache_read": 100, "cache_write": 20})
    tab, _, frame = await run_prompt(llm, "claude-thinker", "hi")
    reply = final(frame)
    assert (reply["status"], reply["text"], reply["provider"]) == ("success", "Hello there.", "claude")
    assert {"type": "reasoning", "text": "Let me think.", "signature": "c2lnbmVk"} in reply["parts"]
    usage = reply["usage"]
    assert (usage["promptTokens"], usage["cachedTokens"], usage["completionTokens"]) == (145, 100, 9)
    assert not usage.get("estimated")
    request = llm.llm_requests()[0]
    key = request["_headers"].get("x-api-key") or request["_headers"].get("authorization", "").removeprefix("Bearer ")
    assert key == "sk-ant-test" and request["_headers"]["anthropic-version"]  # as the SDK sends them
    assert request["model"] == "claude-sonnet-4-5"
    assert request["thinking"] == {"type": "enabled", "budget_tokens": 1024} and request["max_tokens"] == 2048
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert request["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    kinds = [p["type"] for f in tab.frames if f["type"] == "delta" for p in f["parts"]]
    assert "reasoning" in kinds and "text" in kinds
    await tab.close()


async def test_a_tool_call_goes_out_and_back_as_tool_use_and_tool_result(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny ", "in Oslo."]})
    tab, _, frame = await run_prompt(llm, "claude", "weather in Oslo?")
    steps = by_step(frame["value"])
    assert [(m["role"], m["status"]) for m in steps] == [("user", "success"), ("assistant", "success"),
                                                         ("tool", "success"), ("assistant", "success")]
    assert steps[2]["parts"][0]["result"]["city"] == "Oslo" and steps[3]["text"] == "Sunny in Oslo."
    first, second = llm.llm_requests()[:2]
    tool = first["tools"][0]
    assert tool["name"] == "weather" and tool["input_schema"]["properties"]["city"]["type"] == "string"
    assert tool["cache_control"] == {"type": "ephemeral"}
    assistant, results = second["messages"][-2:]
    use = next(b for b in assistant["content"] if b["type"] == "tool_use")
    assert (use["name"], use["input"]) == ("weather", {"city": "Oslo"})
    (result,) = results["content"]
    assert results["role"] == "user" and result["type"] == "tool_result" and result["tool_use_id"] == use["id"]
    assert '"city": "Oslo"' in result["content"] or '"city":"Oslo"' in result["content"]
    pieces = [p for f in tab.frames if f["type"] == "delta" for p in f["parts"] if p["type"] == "tool-call-delta"]
    assert "".join(p["argsTextDelta"] for p in pieces) == '{"city": "Oslo"}'  # the input streamed as it came
    await tab.close()


async def test_thinking_goes_back_signed_with_the_tool_call_it_led_to(llm: Stack) -> None:
    """With extended thinking, the API wants a tool-use turn's thinking back, signed, beside the results."""
    llm.script({"kind": "tools", "thinking": ["Oslo, so ", "the tool."],
                "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny."]})
    tab, _, frame = await run_prompt(llm, "claude-thinking-tools", "weather in Oslo?")
    steps = by_step(frame["value"])
    assert steps[-1]["text"] == "Sunny." and steps[-1]["status"] == "success"
    call_step = steps[1]
    assert {"type": "reasoning", "text": "Oslo, so the tool.", "signature": "c2lnbmVk"} in call_step["parts"]
    assistant = llm.llm_requests()[1]["messages"][-2]
    thinking, use = assistant["content"]
    assert thinking == {"type": "thinking", "thinking": "Oslo, so the tool.", "signature": "c2lnbmVk"}
    assert use["type"] == "tool_use" and use["input"] == {"city": "Oslo"}
    await tab.close()


async def test_a_server_tool_runs_on_anthropics_side_beside_the_agents_tools(llm: Stack) -> None:
    llm.script({"kind": "text", "web_search": "spring tides", "chunks": ["Tides ", "are high."]})
    tab, _, frame = await run_prompt(llm, "claude-searcher", "tides?")
    steps = by_step(frame["value"])
    assert [(m["role"], m["status"]) for m in steps] == [("user", "success"), ("assistant", "success")]
    assert steps[1]["text"] == "Tides are high."  # nothing for this process to run
    (source,) = [p for p in steps[1]["parts"] if p["type"] == "source"]  # the page the answer cites
    assert (source["sourceId"], source["namespace"], source["key"], source["title"]) == (
        "1", "web", "https://example.org/tides", "Tides")
    tools = llm.llm_requests()[0]["tools"]
    assert [t["name"] for t in tools] == ["weather", "web_search"] and tools[1]["type"] == "web_search_20250305"
    await tab.close()


async def test_structured_output_is_asked_in_the_system_prompt_and_validated(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ['{"city": "Rome", ', '"days": 2}']})
    tab, _, frame = await run_prompt(llm, "claude-planner", "plan")
    assert {"type": "object", "object": {"city": "Rome", "days": 2}} in final(frame)["parts"]
    assert "JSON schema" in llm.llm_requests()[0]["system"][0]["text"]
    await tab.close()


@pytest.mark.parametrize(("step", "error"), [
    ({"kind": "status", "status": 400}, "model answered 400: scripted 400"),
    ({"kind": "text", "chunks": ["Half "], "error_event": "Overloaded"}, "Overloaded"),
    ({"kind": "text", "chunks": ["Too long"], "stop": "max_tokens"}, None),
])
async def test_errors_fail_the_reply_with_the_servers_message(llm: Stack, step: dict[str, Any],
                                                             error: str | None) -> None:
    llm.script(step)
    tab, _, frame = await run_prompt(llm, "claude-thinker")
    reply = final(frame)
    if error is None:  # the length limit: the text so far, with its finish reason
        assert (reply["status"], reply["finishReason"], reply["text"]) == ("success", "length", "Too long")
    else:
        assert reply["status"] == "failed" and error in reply["error"], reply
    await tab.close()
