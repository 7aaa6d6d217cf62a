"""OpenAI's Responses API, natively (the openai SDK), against a test server that speaks its
documented streaming events, through a worker: text with reasoning summaries and usage details, a
function call's round trip as function_call and function_call_output items, structured output as
text.format, and a response that fails, is cut short, or is refused over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scenarios.replies.test_agents import by_step, run_prompt
from tests.scenarios.replies.test_providers import final
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio


async def test_text_reasoning_and_usage_stream_through(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["Hello ", "there."], "reasoning": ["The user ", "greets me."],
                "cached": 10, "reasoning_tokens": 4})
    tab, _, frame = await run_prompt(llm, "gpt-r", "hi")
    reply = final(frame)
    assert (reply["status"], reply["text"], reply["provider"]) == ("success", "Hello there.", "responses")
    assert {"type": "reasoning", "text": "The user greets me.",
            "signature": '{"id":"rs_1","encrypted_content":"ZW5jcnlwdGVk"}'} in reply["parts"]  # kept, encrypted
    usage = reply["usage"]
    assert (usage["promptTokens"], usage["completionTokens"], usage["cachedTokens"], usage["reasoningTokens"]) == (
        30, 12, 10, 4)
    request = llm.llm_requests()[0]
    assert request["_headers"]["authorization"] == "Bearer sk-resp-test" and request["model"] == "gpt-5-mini"
    assert request["instructions"] == "Use tools." and request["store"] is False
    assert request["reasoning"] == {"effort": "low", "summary": "auto"}
    assert request["input"][-1] == {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    await tab.close()


async def test_a_function_call_goes_out_and_back_as_items(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny ", "in Oslo."]})
    tab, _, frame = await run_prompt(llm, "gpt-r", "weather in Oslo?")
    steps = by_step(frame["value"])
    assert [(m["role"], m["status"]) for m in steps] == [("user", "success"), ("assistant", "success"),
                                                         ("tool", "success"), ("assistant", "success")]
    assert steps[3]["text"] == "Sunny in Oslo."
    first, second = llm.llm_requests()[:2]
    assert first["tools"][0]["name"] == "weather" and first["tools"][0]["type"] == "function"
    call, output = second["input"][-2:]
    assert (call["type"], call["name"], call["arguments"]) == ("function_call", "weather", '{"city": "Oslo"}')
    assert output["type"] == "function_call_output" and output["call_id"] == call["call_id"]
    assert '"Oslo"' in output["output"]
    pieces = [p for f in tab.frames if f["type"] == "delta" for p in f["parts"] if p["type"] == "tool-call-delta"]
    assert "".join(p["argsTextDelta"] for p in pieces) == '{"city": "Oslo"}'
    await tab.close()


async def test_a_built_in_tool_runs_on_openais_side_beside_the_agents_tools(llm: Stack) -> None:
    llm.script({"kind": "text", "web_search": "spring tides", "chunks": ["Tides ", "are high."]})
    tab, _, frame = await run_prompt(llm, "gpt-r-searcher", "tides?")
    steps = by_step(frame["value"])
    assert [(m["role"], m["status"]) for m in steps] == [("user", "success"), ("assistant", "success")]
    assert steps[1]["text"] == "Tides are high."
    (source,) = [p for p in steps[1]["parts"] if p["type"] == "source"]  # the page the answer cites
    assert (source["sourceId"], source["namespace"], source["key"], source["title"]) == (
        "1", "web", "https://example.org/tides", "Tides")
    tools = llm.llm_requests()[0]["tools"]
    assert [t["type"] for t in tools] == ["function", "web_search"] and tools[0]["name"] == "weather"
    await tab.close()


async def test_encrypted_reasoning_goes_back_with_the_function_call_it_led_to(llm: Stack) -> None:
    """Nothing is stored on OpenAI's side: the reasoning that led to a call is asked for encrypted
    and goes back, before the call and its output, on the next request."""
    llm.script({"kind": "tools", "reasoning": ["Oslo: ", "the tool."],
                "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny."]})
    tab, _, frame = await run_prompt(llm, "gpt-r", "weather in Oslo?")
    assert by_step(frame["value"])[-1]["text"] == "Sunny."
    first, second = llm.llm_requests()[:2]
    assert first["include"] == ["reasoning.encrypted_content"]
    reasoning, call, output = second["input"][-3:]
    assert reasoning == {"type": "reasoning", "id": "rs_1", "encrypted_content": "ZW5jcnlwdGVk",
                         "summary": [{"type": "summary_text", "text": "Oslo: the tool."}]}
    assert call["type"] == "function_call" and output["call_id"] == call["call_id"]
    await tab.close()


async def test_structured_output_goes_as_text_format(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ['{"city": "Rome", ', '"days": 2}']})
    tab, _, frame = await run_prompt(llm, "gpt-r-planner", "plan")
    assert {"type": "object", "object": {"city": "Rome", "days": 2}} in final(frame)["parts"]
    fmt = llm.llm_requests()[0]["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["strict"] is True and fmt["schema"]["required"] == ["city", "days"]
    assert llm.llm_requests()[0]["max_output_tokens"] == 200
    await tab.close()


@pytest.mark.parametrize(("step", "status", "error"), [
    ({"kind": "status", "status": 400}, "failed", "model answered 400: scripted 400"),
    ({"kind": "text", "chunks": ["Half "], "failed": "The server had an error"}, "failed", "had an error"),
    ({"kind": "text", "chunks": ["Too long"], "incomplete": True}, "success", None),
])
async def test_a_failed_cut_or_refused_response(llm: Stack, step: dict[str, Any], status: str,
                                                error: str | None) -> None:
    llm.script(step)
    tab, _, frame = await run_prompt(llm, "gpt-r")
    reply = final(frame)
    assert reply["status"] == status, reply
    if error is None:  # cut by max_output_tokens: the text so far, with its finish reason
        assert (reply["finishReason"], reply["text"]) == ("length", "Too long")
    else:
        assert error in reply["error"], reply
    await tab.close()
