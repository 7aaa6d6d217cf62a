"""Our deltas as the AI SDK's UI message chunks, read back by the SDK's own parser, chunk schema and
message reader (node, the npm ai package): every part type, and the ways a reply ends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.ai_sdk import SDKS, run_node
from threadline.server.ui_stream import DONE, PING, UIStream, sse

_sdk: dict[str, str] = {}


@pytest.fixture(autouse=True, params=list(SDKS))
def sdk(request: pytest.FixtureRequest) -> str:
    """Each stream is read by the 6.x line and by the current major."""
    _sdk["name"] = request.param
    return str(request.param)


def read_with_sdk(body: bytes) -> dict[str, Any]:
    done = run_node(_sdk["name"], "read_stream.mjs", stdin=body, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def stream(deltas: list[list[dict[str, Any]]], status: str = "finished", error: str | None = None,
           files: list[tuple[str, str]] | None = None) -> bytes:
    ui = UIStream()
    chunks = list(ui.begin("m1"))
    for parts in deltas:
        chunks += list(ui.parts(parts))
    chunks += list(ui.files(files or []))
    chunks += list(ui.end(status, error, waiting=ui.waiting))
    return b"".join(sse(c) for c in chunks[:2]) + PING + b"".join(sse(c) for c in chunks[2:]) + DONE


def test_a_cited_web_page_is_read_by_the_sdk_as_a_url_source() -> None:
    body = stream([[{"type": "text", "text": "Tides are high."}],
                   [{"type": "source", "sourceId": "1", "namespace": "web", "key": "https://example.org/tides",
                     "title": "Tides"}]])
    out = read_with_sdk(body)
    assert "error" not in out, out
    (source,) = [p for p in out["message"]["parts"] if p["type"].startswith("source")]
    assert source == {"type": "source-url", "sourceId": "1", "url": "https://example.org/tides", "title": "Tides"}


def test_every_part_type_is_read_by_the_sdk_as_the_part_it_is() -> None:
    body = stream([
        [{"type": "reasoning", "text": "thinking "}, {"type": "reasoning", "text": "hard"}],
        [{"type": "text", "text": "Let me look."}],
        [{"type": "tool-call-delta", "toolCallId": "c1", "toolName": "weather", "argsTextDelta": '{"city":'},
         {"type": "tool-call-delta", "toolCallId": "c1", "toolName": "weather", "argsTextDelta": '"Oslo"}'}],
        [{"type": "tool-call", "toolCallId": "c1", "toolName": "weather", "args": {"city": "Oslo"}},
         {"type": "tool-call", "toolCallId": "c2", "toolName": "boom", "args": {"city": "X"}}],
        [{"type": "tool-result", "toolCallId": "c1", "toolName": "weather", "result": {"sky": "sunny"}},
         {"type": "tool-result", "toolCallId": "c2", "toolName": "boom", "result": "no station", "isError": True}],
        [{"type": "object", "object": {"city": "Os"}}], [{"type": "object", "object": {"city": "Oslo"}}],
        [{"type": "text", "text": "Sunny [1]."}],
        [{"type": "source", "sourceId": "1", "namespace": "global", "key": "ferry.md", "title": "Ferry", "chunk": 0}],
    ], files=[("/api/files/f1/content?exp=1&sig=x", "image/png")])
    out = read_with_sdk(body)
    assert "error" not in out, out
    parts = out["message"]["parts"]
    assert [p["type"] for p in parts] == ["step-start", "reasoning", "text", "tool-weather", "tool-boom",
                                          "step-start", "data-object", "text", "source-document", "file"]
    assert parts[1]["text"] == "thinking hard" and parts[2]["text"] == "Let me look."
    assert (parts[3]["state"], parts[3]["output"]) == ("output-available", {"sky": "sunny"})
    assert (parts[4]["state"], parts[4]["errorText"]) == ("output-error", "no station")
    assert parts[6]["data"] == {"city": "Oslo"}  # one part, replaced in place
    assert parts[8]["title"] == "Ferry" and parts[9]["url"].startswith("/api/files/f1/")
    assert out["chunks"][-1] == "finish" and out["message"]["id"] == "m1"


def test_a_tool_call_left_for_a_person_ends_with_tool_calls() -> None:
    body = stream([[{"type": "tool-call", "toolCallId": "c9", "toolName": "approve", "args": {"city": "Rome"}}]])
    out = read_with_sdk(body)
    tool = out["message"]["parts"][-1]
    assert tool["type"] == "tool-approve" and tool["state"] == "input-available"
    assert out["chunks"][-1] == "finish"


def test_an_aborted_reply_ends_with_abort_and_a_failed_one_with_error() -> None:
    aborted = read_with_sdk(stream([[{"type": "text", "text": "partial"}]], status="aborted"))
    assert aborted["chunks"][-1] == "abort" and aborted["message"]["parts"][-1]["text"] == "partial"
    failed = read_with_sdk(stream([[{"type": "text", "text": "par"}]], status="failed", error="model down"))
    assert failed["chunks"][-1] == "error" and "model down" in failed["error"]
