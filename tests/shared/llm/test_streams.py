"""Reading real servers' streams (pure logic): the recorded transcripts line by line."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from threadline.shared.agents import inline_schema, strict_schema
from threadline.shared.llm.base import (
    Finish,
    ModelError,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from threadline.shared.llm.chunks import ChunkReader
from threadline.shared.llm.openai_compat import retry_after_s
from threadline.shared.llm.think import ThinkSplitter

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "support" / "transcripts"


def read(name: str, think: Any = "auto") -> list[Any]:
    reader = ChunkReader(think)
    events: list[Any] = []
    for line in (TRANSCRIPTS / f"{name}.sse").read_text().splitlines():
        events += reader.line(line)[0]
        if reader.done:
            break
    return events + reader.end()


def calls(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.id, e.name, e.arguments) for e in events if isinstance(e, ToolCall)]


def text(events: list[Any], kind: type = TextDelta) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


def test_ollama_parallel_calls_on_index_0_stay_two_calls() -> None:
    assert calls(read("ollama_parallel_tools")) == [
        ("call_5gxkxbkq", "weather", '{"city":"Oslo"}'), ("call_0a8nqfyr", "weather", '{"city":"Paris"}')]


def test_gemini_whole_calls_without_index_or_id_stay_two_calls() -> None:
    events = read("gemini_parallel_tools")
    assert [(n, a) for _, n, a in calls(events)] == [("weather", '{"city":"Oslo"}'), ("weather", '{"city":"Paris"}')]
    assert events[-1].reason == "tool_calls"


def test_openai_fragments_assemble_and_stream_as_deltas() -> None:
    events = read("openai_parallel_tools")
    assert calls(events) == [("call_Oslo1", "weather", '{"city": "Oslo"}'),
                             ("call_Paris2", "weather", '{"city": "Paris"}')]
    pieces = [(e.index, e.arguments) for e in events if isinstance(e, ToolCallDelta)]
    assert pieces[0] == (0, '{"ci') and pieces[-1] == (1, ': "Paris"}')


@pytest.mark.parametrize(("name", "message"), [
    ("llamacpp_error_midstream", "exceeds the available context size"),
    ("vllm_error_chunk", "out of KV cache blocks"),
])
def test_error_events_fail_the_call_with_the_servers_message(name: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        read(name)


def test_a_finish_reason_without_done_or_usage_completes_the_stream() -> None:
    events = read("finish_without_done")
    assert text(events) == "All done." and events[-1] == Finish("stop", None)


def test_a_stream_cut_before_any_finish_is_an_error() -> None:
    reader = ChunkReader()
    reader.line('data: {"choices":[{"index":0,"delta":{"content":"Hal"}}]}')
    with pytest.raises(ModelError, match="ended before it finished"):
        reader.end()


def test_think_tags_become_reasoning_and_the_text_is_the_answer_only() -> None:
    events = read("ollama_think_tags")
    assert text(events) == "2 + 2 = 4."
    assert text(events, ReasoningDelta).strip() == "The user asks for 2+2. That is simple."


@pytest.mark.parametrize("cut", range(1, 12))
def test_think_tags_split_anywhere_are_still_found(cut: int) -> None:
    stream = "<think>plan</think>\n\nanswer <b>"
    splitter = ThinkSplitter()
    out = splitter.feed(stream[:cut]) + splitter.feed(stream[cut:]) + splitter.end()
    assert "".join(t for k, t in out if k == "text") == "answer <b>"
    assert "".join(t for k, t in out if k == "reasoning") == "plan"


def test_think_modes_always_and_off() -> None:
    always = ThinkSplitter("always")
    out = always.feed("hidden</think>shown") + always.end()
    assert out == [("reasoning", "hidden"), ("text", "shown")]
    off = ThinkSplitter("off")
    assert off.feed("<think>x</think>y") + off.end() == [("text", "<think>x</think>y")]


def test_refusals_are_read_apart_from_text() -> None:
    events = read("openai_refusal")
    assert text(events, RefusalDelta) == "I'm sorry, I can't help with that." and text(events) == ""


def test_length_in_the_middle_of_a_tool_call_is_a_truncated_call() -> None:
    with pytest.raises(ModelError, match="cut off"):
        read("openai_length_in_tool_call")


def test_usage_keeps_cached_and_reasoning_tokens_in_every_family_shape() -> None:
    openai = read("openai_text_usage")[-1].usage
    assert (openai.prompt_tokens, openai.cached_tokens, openai.reasoning_tokens) == (2048, 1024, 64)
    deepseek = read("deepseek_reasoner_tool_call")[-1].usage
    assert (deepseek.cached_tokens, deepseek.reasoning_tokens) == (64, 18)
    groq = read("groq_text_usage")[-1].usage
    assert (groq.prompt_tokens, groq.completion_tokens, groq.total_tokens) == (18, 7, 25)


def test_retry_after_in_ms_seconds_and_http_dates() -> None:
    assert retry_after_s(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_s(httpx.Headers({"retry-after": "7"})) == 7.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_s(httpx.Headers({"retry-after": later})) or 0) <= 31
    assert retry_after_s(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_s(httpx.Headers({})) is None


class Tree(msgspec.Struct):
    name: str
    children: list[Tree]


class Plan(msgspec.Struct):
    city: str
    days: int


class Loose(msgspec.Struct):
    city: str
    note: str = ""


def test_schemas_for_strict_output() -> None:
    strict = strict_schema(inline_schema(Plan))
    assert strict is not None and strict["additionalProperties"] is False
    assert sorted(strict["required"]) == ["city", "days"]
    assert strict_schema(inline_schema(Loose)) is None  # an optional field: sent non-strict


def test_recursive_types_keep_their_refs_instead_of_recursing_forever() -> None:
    schema = inline_schema(Tree)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    assert "Tree" in schema["$defs"]
    assert strict_schema(schema) is not None


def test_a_fenced_json_reply_is_read_without_its_fence() -> None:
    from threadline.shared.generation.structured import unfenced

    assert unfenced('```json\n{"city": "Oslo"}\n```') == '{"city": "Oslo"}\n'
    assert unfenced(' ```\n{"a": 1}```\n') == '{"a": 1}'
    assert unfenced('{"a": "```"}') == '{"a": "```"}'  # no fence around it: as it is


def test_per_token_embeddings_are_mean_pooled() -> None:
    from threadline.shared.vectors.embeddings import pooled

    assert pooled([0.5, 1.0]) == [0.5, 1.0]
    assert pooled([[1.0, 2.0], [3.0, 4.0]]) == [2.0, 3.0]
