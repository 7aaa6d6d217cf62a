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
``tool-output-available`` (or ``-error``, or ``-denied`` when a person denied the call); a
call waiting for approval is a ``tool-approval-request``; a partial object is one
``data-object`` part (id ``object``) that each newer partial replaces in place;
the reply's sources are ``source-document``s and its images or files ``file``s.
A step ends where a tool result is followed by anything else.

``ui_messages`` reads a thread's history back as ``UIMessage[]`` through the same
mapping (``useChat({ messages })`` after a reload).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from itertools import groupby
from typing import Any

import msgspec

from threadline.shared.records import FilePart, ImagePart, Message

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
APPROVAL_RESPONSE = "x-approval-response"  # a decision read back into history: never sent in a stream


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
            result = part.get("result")
            if isinstance(result, dict) and result.get("type") == "execution-denied":  # a person said no
                yield {"type": "tool-output-denied", "toolCallId": call}
            elif part.get("isError"):
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
        elif kind == "tool-approval-request":
            yield {"type": "tool-approval-request", "approvalId": part.get("approvalId", ""),
                   "toolCallId": part.get("toolCallId", "")}
        elif kind == "tool-approval-response":  # (history only: a decision is saved, never a delta)
            yield {"type": APPROVAL_RESPONSE, "toolCallId": part.get("toolCallId", ""),
                   "approval": {"id": part.get("approvalId", ""), "approved": bool(part.get("approved")),
                                **({"reason": part["reason"]} if part.get("reason") else {})}}
        elif kind == "object":
            if part.get("object") != self._object:
                self._object = part.get("object")
                yield {"type": "data-object", "id": "object", "data": self._object}
        elif kind == "source" and part.get("namespace") == "web":  # a web page the answer cites
            yield {"type": "source-url", "sourceId": str(part.get("sourceId", "")), "url": part.get("key", ""),
                   "title": part.get("title") or None}
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


# -- a thread's history as UIMessage[] (useChat({ messages }) after a reload) ------------------
#
# A reply is every assistant and tool message of one order, step by step. Its parts go through
# the same UIStream that streams it live, and the chunks are folded into parts the way the SDK's
# own reader builds a message from them: a reply reloaded reads as it read when it streamed.

UIPart = dict[str, Any]
Links = dict[str, tuple[str, str]]  # file id -> (url, media type)


def ui_messages(messages: Iterable[Message], links: Links) -> list[dict[str, Any]]:
    """``messages`` (oldest first) as UI messages: a user message each, a reply per order."""
    out: list[dict[str, Any]] = []
    for _, group in groupby(messages, key=lambda m: (m.order, m.role == "user")):
        batch = list(group)
        if batch[0].role == "user":
            out += [_user(m, links) for m in batch]
        elif any(m.role == "assistant" for m in batch):
            out.append(_reply(sorted(batch, key=lambda m: m.step_order), links))
    return out


def _user(m: Message, links: Links) -> dict[str, Any]:
    parts: list[UIPart] = [{"type": "text", "text": m.text}] if m.text else []
    parts += [{"type": "file", "url": url, "mediaType": media, **({"filename": p.filename} if p.filename else {})}
              for p in m.parts if isinstance(p, FilePart | ImagePart) for url, media in [_link(p, links)] if url]
    return {"id": m.client_message_id or m.message_id, "role": "user", "parts": parts,
            **({"metadata": m.metadata} if m.metadata is not None else {})}


def _reply(steps: list[Message], links: Links) -> dict[str, Any]:
    ui = UIStream()
    chunks: list[Chunk] = [*ui.begin(steps[0].message_id)]
    files: list[tuple[str, str]] = []
    for m in steps:
        if m.role not in ("assistant", "tool"):
            continue
        chunks += ui.parts(msgspec.to_builtins(p) for p in m.parts)
        files += [link for p in m.parts if isinstance(p, FilePart | ImagePart) for link in [_link(p, links)] if link[0]]
    chunks += ui.files(files)
    first = next(m for m in steps if m.role == "assistant")
    return {"id": first.message_id, "role": "assistant", "parts": list(_fold(chunks)),
            **({"metadata": first.metadata} if first.metadata is not None else {})}


def _link(part: FilePart | ImagePart, links: Links) -> tuple[str, str]:
    if part.file_id:
        return links.get(part.file_id, ("", ""))
    return part.url, part.mime_type or "application/octet-stream"


def _fold(chunks: Iterable[Chunk]) -> Iterator[UIPart]:
    """The parts the SDK's reader makes of these chunks (``readUIMessageStream``)."""
    parts: list[UIPart] = []
    blocks: dict[str, UIPart] = {}  # text/reasoning parts by block id
    tools: dict[str, UIPart] = {}  # tool parts by call id
    for c in chunks:
        kind = c["type"]
        if kind == "start-step":
            parts.append({"type": "step-start"})
        elif kind == "text-start":
            blocks[c["id"]] = {"type": "text", "text": "", "state": "streaming"}
            parts.append(blocks[c["id"]])
        elif kind == "reasoning-start":  # (the SDK's reader keeps a reasoning block's id, not a text's)
            blocks[c["id"]] = {"type": "reasoning", "id": c["id"], "text": "", "state": "streaming"}
            parts.append(blocks[c["id"]])
        elif kind in ("text-delta", "reasoning-delta"):
            blocks[c["id"]]["text"] += c["delta"]
        elif kind in ("text-end", "reasoning-end"):
            blocks[c["id"]]["state"] = "done"
        elif kind == "tool-input-start":
            tools[c["toolCallId"]] = {"type": f"tool-{c['toolName']}", "toolCallId": c["toolCallId"],
                                      "state": "input-streaming"}
            parts.append(tools[c["toolCallId"]])
        elif kind == "tool-input-available":
            tools[c["toolCallId"]].update(state="input-available", input=c["input"])
        elif kind == "tool-output-available" and c["toolCallId"] in tools:
            tools[c["toolCallId"]].update(state="output-available", output=c["output"])
        elif kind == "tool-output-error" and c["toolCallId"] in tools:
            tools[c["toolCallId"]].update(state="output-error", errorText=c["errorText"])
        elif kind == "tool-output-denied" and c["toolCallId"] in tools:
            tools[c["toolCallId"]].update(state="output-denied")
        elif kind == "tool-approval-request" and c["toolCallId"] in tools:
            tools[c["toolCallId"]].update(state="approval-requested", approval={"id": c["approvalId"]})
        elif kind == APPROVAL_RESPONSE and c["toolCallId"] in tools:
            tools[c["toolCallId"]].update(state="approval-responded", approval=c["approval"])
        elif kind.startswith("data-"):
            same = next((p for p in parts if p["type"] == kind and p.get("id") == c.get("id")), None)
            if same is not None:
                same["data"] = c["data"]
            else:
                parts.append({"type": kind, "id": c.get("id"), "data": c["data"]})
        elif kind in ("source-document", "source-url", "file"):
            parts.append({k: v for k, v in c.items() if v is not None})
    yield from parts
