"""The direct relay peer of bench.peers: one process that streams the mock model's reply to the
client as Server-Sent Events, the least a server can do between a model and a tab (no store, no
queue, no worker). POST /relay ``{"prompt"}`` answers ``data: {"text"}`` events, then ``data: [DONE]``.

    PORT=... MOCK_LLM_DELAY_MS=40 MOCK_LLM_WORDS=40 python -m bench.peer_relay
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from threadline.shared.llm.base import ChatRequest, TextDelta
from threadline.shared.llm.mock import MockModel

model = MockModel(int(os.environ.get("MOCK_LLM_WORDS", "40")), int(os.environ.get("MOCK_LLM_DELAY_MS", "40")))


async def relay(request: Request) -> StreamingResponse:
    prompt = (await request.json())["prompt"]

    async def events() -> AsyncIterator[str]:
        async for event in model.stream(ChatRequest(messages=[{"role": "user", "content": prompt}])):
            if isinstance(event, TextDelta):
                yield f"data: {json.dumps({'text': event.text})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


app = Starlette(routes=[Route("/relay", relay, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
