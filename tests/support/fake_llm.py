"""A scripted OpenAI-compatible Chat Completions server for tests (run it as a process).

POST /_script {"responses":[...]} queues what the next calls answer; with nothing
queued a call answers "echo: <last user message>". GET /_requests lists the
bodies received; POST /_reset forgets everything. Response kinds:
  {"kind":"text","chunks":[...],"delay_ms":0,"usage":true}
  {"kind":"tools","calls":[{"name":..,"arguments":"{...}"}]}
        (``$snippet(<target>)`` in arguments: the id of the newest edit of <target> that the request's
        reference notes show, read from the context as a model would: "none" when there is none)
  {"kind":"status","status":429,"retry_after":0,"body":{...},"headers":{...}}   (any status, then the next one)
  {"kind":"transcript","name":"ollama_parallel_tools"}   replay transcripts/<name>.sse verbatim,
        one SSE event (blank-line separated block) at a time
  {"kind":"malformed"}         a chunk that is not JSON
  {"kind":"hang","chunks":[...]} chunks, then silence until the client goes away
  {"kind":"disconnect","chunks":[...]}  chunks, then the connection drops
POST /v1/messages speaks Anthropic's Messages API with the same script (see ``messages``), and
POST /v1/responses OpenAI's Responses API (see ``responses``).
Options of text and tools: "usage": false (no usage chunk, as a server that ignores stream_options),
"finish": false (no finish reason before [DONE], as a server cutting a reply short),
"refuse_null_content": true (HTTP 500 for an assistant tool-call turn whose content is null, as
llama.cpp's server does).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

script: deque[dict[str, Any]] = deque()
received: list[dict[str, Any]] = []


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n"


def usage_chunk(n: int) -> str:
    return "data: " + json.dumps({"id": "c1", "choices": [], "usage": {
        "prompt_tokens": 11, "completion_tokens": n, "total_tokens": 11 + n}}) + "\n\n"


async def completions(request: Request) -> Response:
    body = await request.json()
    step = script.popleft() if script else None
    body["_served"] = step["kind"] if step else "echo"
    body["_headers"] = {k: request.headers[k] for k in ("authorization", "x-provider") if k in request.headers}
    received.append(body)
    if step is None:
        last = next((m for m in reversed(body["messages"]) if m["role"] == "user"), {"content": ""})
        words = f"echo: {last['content']}".split(" ")
        step = {"kind": "text", "chunks": [w if i == 0 else " " + w for i, w in enumerate(words)]}
    kind = step["kind"]
    nulls = [m for m in body["messages"] if m.get("role") == "assistant" and m.get("tool_calls")
             and m.get("content") is None]
    if step.get("refuse_null_content") and nulls:  # as llama.cpp's server does
        return JSONResponse({"error": {"code": 500, "message": "assistant content must be a string"}}, 500)
    if kind == "status":
        headers = {"Retry-After": str(step["retry_after"])} if "retry_after" in step else {}
        headers.update(step.get("headers", {}))
        payload = step.get("body", {"error": {"message": f"scripted {step['status']}"}})
        return JSONResponse(payload, step["status"], headers)
    if kind == "transcript":
        return StreamingResponse(replay(step["name"]), media_type="text/event-stream")

    async def stream() -> Any:
        delay = step.get("delay_ms", 0) / 1000
        for piece in step.get("chunks", []):
            if delay:
                await asyncio.sleep(delay)
            yield chunk({"content": piece})
        if kind == "malformed":
            yield "data: {not json\n\n"
            return
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind == "disconnect":
            raise ConnectionResetError("scripted disconnect")
        if kind == "tools":
            for i, call in enumerate(step["calls"]):
                args = from_context(call.get("arguments", "{}"), body["messages"])
                yield chunk({"tool_calls": [{"index": i, "id": f"call_{i}_{len(received)}", "type": "function",
                                             "function": {"name": call["name"], "arguments": ""}}]})
                for j in range(0, len(args), 5):
                    yield chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 5]}}]})
            if step.get("finish", True):
                yield chunk({}, "tool_calls")
        elif step.get("finish", True):  # finish: false ends with [DONE] alone, as a server cutting a reply
            yield chunk({}, "stop")
        if step.get("usage", True):  # usage: false, as a server that ignores stream_options
            yield usage_chunk(len(step.get("chunks", [])))
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


def from_context(args: str, messages: list[dict[str, Any]]) -> str:
    """``$snippet(<target>)`` replaced by the id of the last edit of that target in the reference notes
    of the request's system messages (shared.generation.context lists them oldest first)."""
    import re

    notes = "\n".join(str(m.get("content")) for m in messages if m.get("role") == "system")

    def newest(match: re.Match[str]) -> str:
        found = re.findall(rf" on {re.escape(match.group(1))} of \S+ v\d+ by [^;\]]+; snippet ([^;\]\s]+)", notes)
        return found[-1] if found else "none"
    return re.sub(r"\$snippet\(([^)]+)\)", newest, args)


def anthropic_event(kind: str, **body: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n"


async def messages(request: Request) -> Response:
    """Anthropic's Messages API, streamed as its documented events: the same script steps (text,
    tools, status), plus "thinking": [...] (extended thinking before the text), "cache_read": n and
    "cache_write": n (prompt cache usage), "stop": a stop reason, "error_event": an error mid-stream,
    "web_search": "query" (a server tool Anthropic runs itself, with its result, before the text)."""
    body = await request.json()
    step = script.popleft() if script else {"kind": "text", "chunks": ["echo"]}
    body["_served"] = step["kind"]
    body["_headers"] = {k: request.headers[k] for k in ("x-api-key", "authorization", "anthropic-version")
                        if k in request.headers}
    received.append(body)
    if step["kind"] == "status":
        error = {"type": "error", "error": {"type": "overloaded_error" if step["status"] == 529 else
                                            "invalid_request_error", "message": f"scripted {step['status']}"}}
        return JSONResponse(step.get("body", error), step["status"])

    async def stream() -> Any:
        usage = {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": step.get("cache_read", 0),
                 "cache_creation_input_tokens": step.get("cache_write", 0)}
        yield anthropic_event("message_start", message={
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage})
        index = 0
        if step.get("web_search"):
            query = json.dumps({"query": step["web_search"]})
            yield anthropic_event("content_block_start", index=index, content_block={
                "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}})
            yield anthropic_event("content_block_delta", index=index, delta={"type": "input_json_delta",
                                                                              "partial_json": query})
            yield anthropic_event("content_block_stop", index=index)
            yield anthropic_event("content_block_start", index=index + 1, content_block={
                "type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                    {"type": "web_search_result", "url": "https://example.org/tides", "title": "Tides",
                     "encrypted_content": "ZW5j", "page_age": None}]})
            yield anthropic_event("content_block_stop", index=index + 1)
            index += 2
        if step.get("thinking"):
            yield anthropic_event("content_block_start", index=index, content_block={"type": "thinking", "thinking": ""})
            for piece in step["thinking"]:
                yield anthropic_event("content_block_delta", index=index, delta={"type": "thinking_delta",
                                                                                  "thinking": piece})
            yield anthropic_event("content_block_delta", index=index, delta={"type": "signature_delta",
                                                                              "signature": "c2lnbmVk"})
            yield anthropic_event("content_block_stop", index=index)
            index += 1
        if step.get("chunks"):
            yield anthropic_event("content_block_start", index=index, content_block={"type": "text", "text": ""})
            yield anthropic_event("ping")
            for piece in step["chunks"]:
                yield anthropic_event("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
            if step.get("web_search"):  # the text cites the page the search found
                yield anthropic_event("content_block_delta", index=index, delta={"type": "citations_delta", "citation": {
                    "type": "web_search_result_location", "url": "https://example.org/tides", "title": "Tides",
                    "cited_text": "Spring tides", "encrypted_index": "aWR4"}})
            yield anthropic_event("content_block_stop", index=index)
            index += 1
        if step.get("error_event"):
            yield anthropic_event("error", error={"type": "overloaded_error", "message": step["error_event"]})
            return
        for i, call in enumerate(step.get("calls", [])):
            args = call.get("arguments", "{}")
            yield anthropic_event("content_block_start", index=index, content_block={
                "type": "tool_use", "id": f"toolu_{i}_{len(received)}", "name": call["name"], "input": {}})
            for j in range(0, len(args), 5):
                yield anthropic_event("content_block_delta", index=index, delta={"type": "input_json_delta",
                                                                                  "partial_json": args[j:j + 5]})
            yield anthropic_event("content_block_stop", index=index)
            index += 1
        stop = step.get("stop", "tool_use" if step["kind"] == "tools" else "end_turn")
        yield anthropic_event("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
                              usage={"output_tokens": 7 + len(step.get("chunks", []))})
        yield anthropic_event("message_stop")

    return StreamingResponse(stream(), media_type="text/event-stream")


async def responses(request: Request) -> Response:
    """OpenAI's Responses API, streamed as its documented events: the same script steps (text,
    tools, status), plus "reasoning": [...] (summary text before the answer), "cached": n and
    "reasoning_tokens": n (usage details), "incomplete": true (cut by max_output_tokens),
    "failed": "message" (a response.failed event after the text), "web_search": "query" (a built-in
    web search the server runs first, and a URL citation on the text)."""
    body = await request.json()
    step = script.popleft() if script else {"kind": "text", "chunks": ["echo"]}
    body["_served"] = step["kind"]
    body["_headers"] = {k: request.headers[k] for k in ("authorization",) if k in request.headers}
    received.append(body)
    if step["kind"] == "status":
        error = {"error": {"message": f"scripted {step['status']}", "type": "invalid_request_error", "code": None}}
        return JSONResponse(step.get("body", error), step["status"])

    async def stream() -> Any:
        seq = 0

        def event(kind: str, **fields: Any) -> str:
            nonlocal seq
            seq += 1
            return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n"

        shell = {"id": "resp_1", "object": "response", "created_at": 1, "model": body["model"], "output": [],
                 "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
        yield event("response.created", response={**shell, "status": "in_progress"})
        index = 0
        if step.get("web_search"):
            call = {"id": "ws_1", "type": "web_search_call", "status": "in_progress"}
            yield event("response.output_item.added", output_index=index, item=call)
            for phase in ("in_progress", "searching", "completed"):
                yield event(f"response.web_search_call.{phase}", item_id="ws_1", output_index=index)
            yield event("response.output_item.done", output_index=index, item={
                **call, "status": "completed", "action": {"type": "search", "query": step["web_search"]}})
            index += 1
        if step.get("reasoning"):
            yield event("response.output_item.added", output_index=index,
                        item={"id": "rs_1", "type": "reasoning", "summary": []})
            for piece in step["reasoning"]:
                yield event("response.reasoning_summary_text.delta", item_id="rs_1", output_index=index,
                            summary_index=0, delta=piece)
            sealed = {"encrypted_content": "ZW5jcnlwdGVk"} if "reasoning.encrypted_content" in body.get("include", []) \
                else {}
            yield event("response.output_item.done", output_index=index, item={
                "id": "rs_1", "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "".join(step["reasoning"])}], **sealed})
            index += 1
        if step.get("chunks"):
            yield event("response.output_item.added", output_index=index, item={
                "id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []})
            for piece in step["chunks"]:
                yield event("response.output_text.delta", item_id="msg_1", output_index=index, content_index=0,
                            delta=piece, logprobs=[])
            if step.get("web_search"):
                yield event("response.output_text.annotation.added", item_id="msg_1", output_index=index,
                            content_index=0, annotation_index=0, annotation={
                                "type": "url_citation", "url": "https://example.org/tides", "title": "Tides",
                                "start_index": 0, "end_index": 5})
            index += 1
        if step.get("failed"):
            yield event("response.failed", response={**shell, "status": "failed",
                                                      "error": {"code": "server_error", "message": step["failed"]}})
            return
        for i, call in enumerate(step.get("calls", [])):
            args = call.get("arguments", "{}")
            item = {"id": f"fc_{i}", "type": "function_call", "call_id": f"call_{i}_{len(received)}",
                    "name": call["name"], "arguments": "", "status": "in_progress"}
            yield event("response.output_item.added", output_index=index, item=item)
            for j in range(0, len(args), 5):
                yield event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                            delta=args[j:j + 5])
            yield event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                        arguments=args)
            yield event("response.output_item.done", output_index=index,
                        item={**item, "arguments": args, "status": "completed"})
            index += 1
        usage = {"input_tokens": 30, "input_tokens_details": {"cached_tokens": step.get("cached", 0)},
                 "output_tokens": 12, "output_tokens_details": {"reasoning_tokens": step.get("reasoning_tokens", 0)},
                 "total_tokens": 42}
        if step.get("incomplete"):
            yield event("response.incomplete", response={**shell, "status": "incomplete", "usage": usage,
                                                         "incomplete_details": {"reason": "max_output_tokens"}})
        else:
            yield event("response.completed", response={**shell, "status": "completed", "usage": usage})

    return StreamingResponse(stream(), media_type="text/event-stream")


TRANSCRIPTS = Path(__file__).parent / "transcripts"


async def replay(name: str) -> Any:
    """A recorded stream, event by event, as the server family sent it."""
    text = (TRANSCRIPTS / f"{name}.sse").read_text()
    for block in text.split("\n\n"):
        if block.strip():
            await asyncio.sleep(0.002)
            yield block.strip("\n") + "\n\n"


embedding_failures: deque[int] = deque()


CONCEPTS = [
    {"car", "cars", "automobile", "automobiles", "vehicle", "sedan"},
    {"cheap", "inexpensive", "affordable", "budget", "bargain"},
    {"holiday", "vacation", "trip", "getaway", "journey"},
    {"dog", "dogs", "puppy", "canine"},
    {"title", "heading", "headline", "caption"},
    {"weather", "forecast", "climate"},
]
DIM = 64


def concept_vector(text: str) -> list[float]:
    """Synonyms share a dimension (so a paraphrase is near); other words hash into the rest."""
    import hashlib
    import math
    import re

    vec = [0.0] * DIM
    for word in re.findall(r"\w+", text.lower()):
        for i, group in enumerate(CONCEPTS):
            if word in group:
                vec[i] += 3.0
                break
        else:
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            vec[len(CONCEPTS) + h % (DIM - len(CONCEPTS))] += 0.3
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


async def embeddings(request: Request) -> Response:
    body = await request.json()
    if embedding_failures:
        return JSONResponse({"error": {"message": "scripted"}}, embedding_failures.popleft(),
                            {"Retry-After": "0"})
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return JSONResponse({"object": "list", "model": body["model"], "data": [
        {"object": "embedding", "index": i, "embedding": concept_vector(t)} for i, t in enumerate(inputs)],
        "usage": {"prompt_tokens": sum(len(t.split()) for t in inputs),
                  "total_tokens": sum(len(t.split()) for t in inputs)}})


images_received: list[dict[str, Any]] = []


async def images(request: Request) -> Response:
    """OpenAI's images API: a PNG whose colour comes from the prompt, as b64_json."""
    import base64
    import zlib

    from tests.support.images import png

    body = await request.json()
    images_received.append(body)
    h = zlib.crc32(body["prompt"].encode())
    data = png(32, 32, (h & 255, (h >> 8) & 255, (h >> 16) & 255))
    return JSONResponse({"created": 1, "data": [{"b64_json": base64.b64encode(data).decode(),
                                                 "revised_prompt": body["prompt"]}]})


async def images_seen(request: Request) -> Response:
    return JSONResponse(images_received)


async def set_script(request: Request) -> Response:
    script.extend((await request.json())["responses"])
    return JSONResponse({"queued": len(script)})


async def requests_seen(request: Request) -> Response:
    return JSONResponse(received)


async def fail_embeddings(request: Request) -> Response:
    """POST {"statuses":[429, 503]}: the next embedding calls answer these."""
    embedding_failures.extend((await request.json())["statuses"])
    return JSONResponse({"queued": len(embedding_failures)})


async def reset(request: Request) -> Response:
    script.clear()
    received.clear()
    images_received.clear()
    embedding_failures.clear()
    return JSONResponse({"ok": True})


app = Starlette(routes=[
    Route("/v1/chat/completions", completions, methods=["POST"]),
    Route("/v1/messages", messages, methods=["POST"]),
    Route("/v1/responses", responses, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/images/generations", images, methods=["POST"]),
    Route("/_images", images_seen, methods=["GET"]),
    Route("/_script", set_script, methods=["POST"]),
    Route("/_requests", requests_seen, methods=["GET"]),
    Route("/_reset", reset, methods=["POST"]),
    Route("/_fail_embeddings", fail_embeddings, methods=["POST"]),
])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
