"""The AI SDK's UI message stream (protocol v1), made from a reply's deltas.

``useChat`` of the Vercel AI SDK reads a reply as Server-Sent Events whose
``data:`` lines are JSON chunks: ``start``, ``start-step``/``finish-step``,
``text-start``/``-delta``/``-end``, ``reasoning-*``, ``tool-input-*``,
``tool-output-*``, ``data-*``, ``source-document``, ``file``, ``finish``,
``abort``, ``error``, then ``[DONE]``. ``UIStream`` turns our deltas (lists of
parts) into those chunks, pure logic: the HTTP side (server.ai_sdk) feeds it.

How our parts map: text and reasoning open a block (an id) that the next part
of another kind closes; a tool call's argument pieces are ``tool-input-delta``s
and the whole call ``tool-input-available`` (a human tool's call stays without
output: the page answers it with the SDK's tool-output call); a tool result is
``tool-output-available`` (or ``-error``); a partial object is one
``data-object`` part (id ``object``) that each newer partial replaces in place;
the reply's sources are ``source-document``s and its images or files ``file``s.
A step ends where a tool result is followed by anything else.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import Any

import msgspec

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # no proxy buffering: chunks go out as they come
    "x-vercel-ai-ui-message-stream": "v1",
}
DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"  # an SSE comment: readers skip it, idle proxies see traffic

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

Chunk = dict[str, Any]


def sse(chunk: Chunk) -> bytes:
    return b"data: " + _encode(chunk) + b"\n\n"


class UIStream:
    """One reply as UI message chunks: ``begin``, then ``parts`` per delta, then ``end``."""

    def __init__(self) -> None:
        self._open: tuple[str, str] | None = None  # ("text"|"reasoning", id) of the block being written
        self._blocks = 0
        self._after_tools = False  # a tool result came: the next content starts a step
        self._inputs: set[str] = set()  # tool calls whose input has started
        self._outputs: set[str] = set()  # tool calls with their output
        self._object: Any = None

    @property
    def waiting(self) -> bool:
        """A tool call has no output: a person answers it (a human tool)."""
        return bool(self._inputs - self._outputs)

    def begin(self, message_id: str) -> Iterator[Chunk]:
        yield {"type": "start", "messageId": message_id}
        yield {"type": "start-step"}

    def parts(self, parts: Iterable[dict[str, Any]]) -> Iterator[Chunk]:
        for part in parts:
            yield from self._part(part)

    def _part(self, part: dict[str, Any]) -> Iterator[Chunk]:
        kind = part.get("type")
        if kind == "tool-result":
            yield from self._close()
            call = part.get("toolCallId", "")
            self._outputs.add(call)
            if part.get("isError"):
                yield {"type": "tool-output-error", "toolCallId": call, "errorText": _error_text(part.get("result"))}
            else:
                yield {"type": "tool-output-available", "toolCallId": call, "output": part.get("result")}
            self._after_tools = True
            return
        if kind in ("text", "reasoning", "tool-call-delta", "tool-call", "object") and self._after_tools:
            yield from self._close()
            yield {"type": "finish-step"}
            yield {"type": "start-step"}
            self._after_tools = False
        if kind in ("text", "reasoning"):
            if not part.get("text"):
                return
            if self._open is None or self._open[0] != kind:
                yield from self._close()
                self._blocks += 1
                self._open = (kind, f"{kind}-{self._blocks}")
                yield {"type": f"{kind}-start", "id": self._open[1]}
            yield {"type": f"{kind}-delta", "id": self._open[1], "delta": part["text"]}
        elif kind == "tool-call-delta":
            call = yield from self._input(part)
            yield {"type": "tool-input-delta", "toolCallId": call, "inputTextDelta": part.get("argsTextDelta", "")}
        elif kind == "tool-call":
            call = yield from self._input(part)
            yield {"type": "tool-input-available", "toolCallId": call, "toolName": part.get("toolName", ""),
                   "input": part.get("args") if part.get("args") is not None else {}}
        elif kind == "object":
            if part.get("object") != self._object:
                self._object = part.get("object")
                yield {"type": "data-object", "id": "object", "data": self._object}
        elif kind == "source":
            yield {"type": "source-document", "sourceId": str(part.get("sourceId", "")), "mediaType": "text/plain",
                   "title": part.get("title") or part.get("key", ""), "filename": part.get("key")}

    def _input(self, part: dict[str, Any]) -> Generator[Chunk, None, str]:
        """A tool call's input begins (once per call); its id."""
        yield from self._close()
        call = str(part.get("toolCallId", ""))
        if call not in self._inputs:
            self._inputs.add(call)
            yield {"type": "tool-input-start", "toolCallId": call, "toolName": part.get("toolName", "")}
        return call

    def files(self, links: Iterable[tuple[str, str]]) -> Iterator[Chunk]:
        """The reply's images and files, as (url, media type)."""
        yield from self._close()
        for url, media_type in links:
            yield {"type": "file", "url": url, "mediaType": media_type}

    def end(self, status: str, error: str | None = None, waiting: bool = False) -> Iterator[Chunk]:
        """The closing chunks for a stream that ended ``status`` (finished, aborted, failed)."""
        yield from self._close()
        if status == "aborted":
            yield {"type": "abort", "reason": error or "aborted"}
            return
        yield {"type": "finish-step"}
        if status == "failed" or error:
            yield {"type": "error", "errorText": error or "the reply failed"}
            return
        yield {"type": "finish", "finishReason": "tool-calls" if waiting else "stop"}

    def _close(self) -> Iterator[Chunk]:
        if self._open is not None:
            yield {"type": f"{self._open[0]}-end", "id": self._open[1]}
            self._open = None


def error_chunk(text: str) -> Chunk:
    return {"type": "error", "errorText": text}


def decode_parts(raw: bytes | str) -> list[dict[str, Any]]:
    parts = _decode(raw)
    return parts if isinstance(parts, list) else []


def _error_text(result: Any) -> str:
    return result if isinstance(result, str) else _encode(result).decode()
