"""Conformance with real model servers: recorded stream transcripts of each server family,
replayed by the loopback OpenAI-compatible server, through the whole pipeline.

Each test checks what is stored and what a subscriber sees.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from tests.scenarios.replies.helpers import delta_text
from tests.scenarios.replies.test_agents import by_step, run_prompt
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio


def transcript(name: str) -> dict[str, str]:
    return {"kind": "transcript", "name": name}


def final(frame: dict[str, Any]) -> dict[str, Any]:
    return max((m for m in frame["value"]["page"] if m["role"] == "assistant"), key=lambda m: m["stepOrder"])


def deltas_of(tab: Any, frame: dict[str, Any]) -> list[dict[str, Any]]:
    stream_id = frame["value"]["streams"][-1]["streamId"]
    return [d for d in tab.frames if d["type"] == "delta" and d["streamId"] == stream_id]


def tool_results(frame: dict[str, Any]) -> list[Any]:
    return [m["parts"][0]["result"]["city"] for m in by_step(frame["value"]) if m["role"] == "tool"]


@pytest.mark.parametrize("name", ["ollama_parallel_tools", "gemini_parallel_tools", "openai_parallel_tools"])
async def test_parallel_tool_calls_of_every_family_run_as_separate_calls(llm: Stack, name: str) -> None:
    llm.script(transcript(name), {"kind": "text", "chunks": ["Both ", "sunny."]})
    tab, _, frame = await run_prompt(llm, "tools")
    assert tool_results(frame) == ["Oslo", "Paris"]
    assert final(frame)["text"] == "Both sunny."
    second = llm.llm_requests()[1]["messages"]
    assert [m["role"] for m in second[-3:]] == ["assistant", "tool", "tool"]
    assert [c["function"]["name"] for c in second[-3]["tool_calls"]] == ["weather", "weather"]
    await tab.close()


async def test_tool_arguments_stream_as_deltas_before_the_whole_call(llm: Stack) -> None:
    llm.script(transcript("openai_parallel_tools"), {"kind": "text", "chunks": ["ok"]})
    tab, _, frame = await run_prompt(llm, "tools")
    kinds = [p["type"] for d in tab.frames if d["type"] == "delta" for p in d["parts"]]
    assert "tool-call-delta" in kinds and kinds.index("tool-call-delta") < kinds.index("tool-call")
    pieces = [p for d in tab.frames if d["type"] == "delta" for p in d["parts"] if p["type"] == "tool-call-delta"]
    oslo = "".join(p["argsTextDelta"] for p in pieces if p["toolCallId"] == "call_Oslo1")
    assert json.loads(oslo) == {"city": "Oslo"}
    stored = [p for m in frame["value"]["page"] for p in m["parts"]]
    assert not any(p["type"] == "tool-call-delta" for p in stored)  # deltas only
    await tab.close()


@pytest.mark.parametrize(("name", "message", "partial"), [
    ("llamacpp_error_midstream", "exceeds the available context size", "Once upon"),
    ("vllm_error_chunk", "out of KV cache blocks", "Hello"),
])
async def test_an_error_event_mid_stream_fails_the_reply_with_the_servers_message(
        llm: Stack, name: str, message: str, partial: str) -> None:
    llm.script(transcript(name))
    tab, _, frame = await run_prompt(llm, "echo")
    reply = final(frame)
    assert reply["status"] == "failed" and message in reply["error"]
    assert reply["text"] == partial
    assert frame["value"]["streams"][-1]["status"] == "aborted"
    await tab.close()


@pytest.mark.parametrize(("agent", "status", "body"), [
    ("mistral", 422, {"object": "error", "message": {"detail": [{"type": "extra_forbidden",
     "loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted", "input": {"include_usage": True}}]},
     "type": "invalid_request_message_error", "code": None}),
    ("groq", 400, {"error": {"message": "'stream_options' : property 'stream_options' is unsupported",
                             "type": "invalid_request_error"}}),
])
async def test_a_server_that_rejects_stream_options_gets_the_call_again_without_it(
        llm: Stack, agent: str, status: int, body: dict[str, Any]) -> None:
    llm.script({"kind": "status", "status": status, "body": body}, transcript("groq_text_usage"))
    tab, _, frame = await run_prompt(llm, agent)
    reply = final(frame)
    assert (reply["status"], reply["text"]) == ("success", "Fast answer.")
    first, second = llm.llm_requests()[:2]
    assert "stream_options" in first and "stream_options" not in second
    assert reply["usage"]["totalTokens"] == 25  # Groq's x_groq usage
    await tab.close()


async def test_think_tags_are_reasoning_and_the_stored_text_is_the_answer_only(llm: Stack) -> None:
    llm.script(transcript("ollama_think_tags"))
    tab, _, frame = await run_prompt(llm, "echo")
    reply = final(frame)
    assert reply["text"] == "2 + 2 = 4."
    reasoning = [p["text"] for p in reply["parts"] if p["type"] == "reasoning"]
    assert reasoning and "That is simple." in reasoning[0]
    assert delta_text(deltas_of(tab, frame)) == "2 + 2 = 4."  # text deltas add up to the saved text
    await tab.close()


async def test_a_finish_reason_without_usage_or_done_completes_the_reply(llm: Stack) -> None:
    llm.script(transcript("finish_without_done"))
    tab, _, frame = await run_prompt(llm, "echo")
    assert (final(frame)["status"], final(frame)["text"]) == ("success", "All done.")
    await tab.close()


async def test_a_refusal_is_shown_as_the_replys_refusal(llm: Stack) -> None:
    llm.script(transcript("openai_refusal"))
    tab, _, frame = await run_prompt(llm, "planner")
    reply = final(frame)
    assert reply["status"] == "failed" and reply["finishReason"] == "refusal"
    assert reply["error"] == "the model refused: I'm sorry, I can't help with that."
    assert {"type": "refusal", "text": "I'm sorry, I can't help with that."} in reply["parts"]
    await tab.close()


async def test_a_tool_call_cut_off_by_the_length_limit_is_not_run(llm: Stack) -> None:
    llm.script(transcript("openai_length_in_tool_call"))
    tab, _, frame = await run_prompt(llm, "tools")
    reply = final(frame)
    assert reply["status"] == "failed" and "cut off" in reply["error"]
    assert not [m for m in frame["value"]["page"] if m["role"] == "tool"]
    await tab.close()


async def test_reasoning_models_get_max_completion_tokens_and_no_temperature(llm: Stack) -> None:
    tab, _, frame = await run_prompt(llm, "reasoner")
    body = llm.llm_requests()[0]
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body and "temperature" not in body
    assert final(frame)["status"] == "success"
    await tab.close()


async def test_parameters_a_server_names_in_a_400_are_adapted_once_each(llm: Stack) -> None:
    llm.script(
        {"kind": "status", "status": 400, "body": {"error": {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}},
        {"kind": "status", "status": 400, "body": {"error": {
            "message": "Unsupported value: 'temperature' does not support 0.5 with this model. "
                       "Only the default (1) value is supported.",
            "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}},
        {"kind": "text", "chunks": ["fine"]},
    )
    tab, _, frame = await run_prompt(llm, "custom-reasoner")
    first, second, third = llm.llm_requests()[:3]
    assert (first["max_tokens"], first["temperature"]) == (50, 0.5)
    assert second["max_completion_tokens"] == 50 and "max_tokens" not in second and second["temperature"] == 0.5
    assert third["max_completion_tokens"] == 50 and "temperature" not in third
    assert final(frame)["text"] == "fine"
    await tab.close()


async def test_deepseek_gets_its_reasoning_back_on_tool_call_turns(llm: Stack, stack: Stack) -> None:
    llm.script(transcript("deepseek_reasoner_tool_call"), transcript("deepseek_reasoner_answer"))
    tab, _, frame = await run_prompt(llm, "deepseek")
    assert final(frame)["text"] == "It is sunny in Oslo."
    first, second = llm.llm_requests()[:2]
    turn = next(m for m in second["messages"] if m.get("tool_calls"))
    assert turn["reasoning_content"] == "The user wants Oslo's weather. I should call the tool."
    assert first["_headers"] == {"authorization": "Bearer ds-key", "x-provider": "deepseek"}
    assert (first["reasoning_effort"], first["thinking_budget"]) == ("high", 512)  # agent and provider options
    call_step = by_step(frame["value"])[1]
    assert (call_step["usage"]["cachedTokens"], call_step["usage"]["reasoningTokens"]) == (64, 18)
    assert call_step["provider"] == "deepseek"
    await tab.close()


async def test_structured_output_is_strict_when_the_schema_allows_it(llm: Stack) -> None:
    llm.script(transcript("openai_structured_output"), {"kind": "text", "chunks": ['{"city": "Rome"}']})
    tab, _, frame = await run_prompt(llm, "planner")
    fmt = llm.llm_requests()[0]["response_format"]["json_schema"]
    assert fmt["strict"] is True and fmt["schema"]["additionalProperties"] is False
    assert {"type": "object", "object": {"city": "Oslo", "days": 3}} in final(frame)["parts"]
    tab2, _, frame2 = await run_prompt(llm, "loose")
    assert "strict" not in llm.llm_requests()[1]["response_format"]["json_schema"]
    assert final(frame2)["status"] == "success"
    await tab.close()
    await tab2.close()


def refusal(status: int, message: str) -> dict[str, Any]:
    return {"kind": "status", "status": status, "body": {"error": {"code": status, "message": message,
                                                                   "type": "internal_server_error"}}}


# what llama-cpp-python's server answers a json_schema response format (its request model knows
# text and json_object only); then a server that takes no response format at all
NO_JSON_SCHEMA = ("1 validation error for CreateChatCompletionRequest\nresponse_format\n  Input tag "
                  "'json_schema' found using 'type' does not match any of the expected tags: 'text', 'json_object'")
NO_RESPONSE_FORMAT = "Unrecognized request argument supplied: response_format"


async def test_structured_output_falls_back_to_what_the_server_takes(llm: Stack) -> None:
    llm.script(refusal(500, NO_JSON_SCHEMA), refusal(400, NO_RESPONSE_FORMAT),
               {"kind": "text", "chunks": ['{"city": ', '"Oslo", "days": 3}']})
    tab, _, frame = await run_prompt(llm, "local-planner")
    first, second, third = llm.llm_requests()
    schema = first["response_format"]["json_schema"]["schema"]
    assert second["response_format"] == {"type": "json_object", "schema": schema}  # as llama.cpp takes it
    assert "response_format" not in third  # then the schema in the instructions
    system = third["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Plan trips.")
    assert json.dumps(schema, separators=(",", ":")) in system["content"]
    reply = final(frame)
    assert reply["status"] == "success" and {"type": "object", "object": {"city": "Oslo", "days": 3}} in reply["parts"]
    await tab.close()


async def test_a_refused_response_format_is_remembered_for_the_model(llm: Stack) -> None:
    """Two calls of one process's client: the second starts where the first ended up."""
    from threadline.shared.llm.base import ChatRequest
    from threadline.shared.llm.openai_compat import OpenAICompatible
    from threadline.shared.llm.providers import Provider

    llm.script(refusal(500, NO_JSON_SCHEMA), {"kind": "text", "chunks": ['{"city": "Oslo", "days": 3}']},
               {"kind": "text", "chunks": ['{"city": "Rome", "days": 2}']})
    model = OpenAICompatible(Provider("local", f"{llm.llm}/v1"), "gemma-3-270m")
    fmt = {"type": "json_schema", "json_schema": {"name": "Plan", "schema": {"type": "object"}}}
    for _ in range(2):
        events = [e async for e in model.stream(ChatRequest(messages=[{"role": "user", "content": "Plan"}],
                                                            response_format=fmt))]
        assert events
    kinds = [r.get("response_format", {}).get("type") for r in llm.llm_requests()]
    assert kinds == ["json_schema", "json_object", "json_object"]  # the 500 is not retried as is, nor asked again


async def test_an_error_about_something_else_is_not_taken_for_a_refused_parameter(llm: Stack) -> None:
    llm.script(refusal(401, "invalid api key for response_format requests"))
    tab, _, frame = await run_prompt(llm, "local-planner")
    assert final(frame)["status"] == "failed" and len(llm.llm_requests()) == 1
    await tab.close()


@pytest.mark.parametrize(("name", "text", "usage"), [
    ("openai_text_usage", "Hello there.", {"promptTokens": 2048, "cachedTokens": 1024, "reasoningTokens": 64}),
    ("anthropic_compat_text", "Hi from Claude.", {"promptTokens": 12, "completionTokens": 6}),
    ("groq_text_usage", "Fast answer.", {"totalTokens": 25}),
    ("azure_text_usage", "From Azure.", {"promptTokens": 9, "totalTokens": 12}),
    ("openrouter_text_usage", "Routed reply.", {"totalTokens": 18}),
    ("lmstudio_text_usage", "Local model.", {"totalTokens": 23}),
])
async def test_happy_text_path_per_family_with_usage(llm: Stack, name: str, text: str,
                                                    usage: dict[str, int]) -> None:
    llm.script(transcript(name))
    tab, _, frame = await run_prompt(llm, "echo")
    reply = final(frame)
    assert (reply["status"], reply["text"]) == ("success", text)
    assert {k: reply["usage"][k] for k in usage} == usage
    await tab.close()


async def test_async_usage_and_raw_handlers_are_awaited_with_who_and_where(llm: Stack) -> None:
    r = llm.store()
    r.delete("test:usage-async", "test:raw-async")
    llm.script(transcript("openai_text_usage"))
    tab, tid, frame = await run_prompt(llm, "observed")
    assert final(frame)["status"] == "success"
    usage = [msgspec.json.decode(x) for x in r.lrange("test:usage-async", 0, -1)]
    assert usage == [{"provider": "default", "model": "fake", "agent": "observed", "user": "alice",
                      "cached": 1024, "reasoning": 64}]
    raw = [msgspec.json.decode(x) for x in r.lrange("test:raw-async", 0, -1)]
    assert raw[0] == {"kind": "request", "provider": "default", "model": "fake", "thread": tid}
    assert {e["kind"] for e in raw[1:]} == {"chunk"}
    await tab.close()


async def test_a_failing_usage_handler_never_breaks_the_reply(llm: Stack) -> None:
    tab, _, frame = await run_prompt(llm, "broken-handler")
    assert final(frame)["status"] == "success"
    await tab.close()


async def test_the_embedder_retries_429_and_5xx_on_one_pooled_client(llm: Stack) -> None:
    import httpx

    from threadline.shared.errors import Unavailable
    from threadline.shared.llm.providers import Provider
    from threadline.shared.vectors.embeddings import OpenAIEmbedder

    provider = Provider("embeddings", f"{llm.llm}/v1")
    embedder = OpenAIEmbedder(provider, "concepts", backoff_s=0.01)
    httpx.post(f"{llm.llm}/_fail_embeddings", json={"statuses": [429, 503]}).raise_for_status()
    vectors = await embedder.embed(["cheap car", "affordable automobile"])
    assert len(vectors) == 2 and len(vectors[0]) == 64
    assert provider.client() is provider.client()  # one pooled client per provider and loop
    httpx.post(f"{llm.llm}/_fail_embeddings", json={"statuses": [400]}).raise_for_status()
    with pytest.raises(Unavailable, match="answered 400"):
        await embedder.embed(["x"])  # not retried: a 400 will not get better
    await provider.client().aclose()


async def test_python_api_calls_override_model_and_options_per_call(llm: Stack) -> None:
    from threadline import Threadline
    from threadline.shared.errors import BadRequest

    settings = llm.settings(APP_MODULE="tests.support.agents", LLM_BASE_URL=f"{llm.llm}/v1", LLM_MODEL="fake")
    async with Threadline(settings) as tl:
        thread = await tl.create_thread("alice")
        result = await thread.generate_text("echo", "hi there", model="override-model", options={"seed": 7})
        assert result.outcome == "finished" and result.text == "echo: hi there"
        body = llm.llm_requests()[-1]
        assert (body["model"], body["seed"]) == ("override-model", 7)
        with pytest.raises(BadRequest, match="unknown provider"):
            await thread.generate_text("echo", "again", provider="nowhere")


async def test_a_server_that_sends_no_usage_is_counted_by_an_estimate(llm: Stack) -> None:
    """Servers that ignore stream_options (llama.cpp's) report no usage: the reply is counted from
    its text, marked estimated, and lands in the ledger, never free."""
    import httpx

    from tests.scenarios.replies.helpers import token

    def calls() -> int:
        usage = httpx.get(f"{llm.web}/api/usage", headers={"Authorization": f"Bearer {token('alice')}"}).json()
        return int(usage["totals"]["calls"])

    before = calls()
    llm.script({"kind": "text", "chunks": ["a few ", "words ", "here"], "usage": False})
    tab, _, frame = await run_prompt(llm, "echo")
    usage = final(frame)["usage"]
    assert usage["estimated"] is True and usage["completionTokens"] == 4 and usage["promptTokens"] > 0
    assert usage["totalTokens"] == usage["promptTokens"] + usage["completionTokens"]
    assert calls() == before + 1
    await tab.close()


async def test_a_stream_that_ends_without_a_finish_reason_is_not_a_whole_reply(llm: Stack) -> None:
    llm.script({"kind": "text", "chunks": ["half an "], "finish": False})
    tab, _, frame = await run_prompt(llm, "echo")
    reply = final(frame)
    assert reply["status"] == "failed" and "no finish reason" in reply["error"], reply
    assert reply["text"] == "half an "  # what came is kept, shown as failed
    await tab.close()


async def test_a_tool_steps_assistant_turn_is_sent_with_string_content(llm: Stack) -> None:
    llm.script({"kind": "tools", "calls": [{"name": "weather", "arguments": '{"city": "Oslo"}'}]},
               {"kind": "text", "chunks": ["Sunny."], "refuse_null_content": True})
    tab, _, frame = await run_prompt(llm, "tools", "weather in Oslo?")
    assert (final(frame)["status"], final(frame)["text"]) == ("success", "Sunny."), final(frame)
    turn = next(m for m in llm.llm_requests()[-1]["messages"] if m.get("tool_calls"))
    assert turn["content"] == ""
    await tab.close()
