"""Reading the OpenAI chat shape every model call arrives in (``ChatRequest.messages``), for the
providers that speak another API (Anthropic's Messages, OpenAI's Responses)."""

from __future__ import annotations

import json
from typing import Any


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def call_arguments(raw: Any) -> Any:
    """A tool call's arguments as an object (a JSON string or already one; ``{}`` when unreadable)."""
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw or "{}")
    except ValueError:
        return {}


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:`` URL; None for any other URL."""
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return head, data
    return None


def with_schema_instructions(messages: list[dict[str, Any]], fmt: dict[str, Any]) -> list[dict[str, Any]]:
    """``messages`` with the JSON schema the reply must match told in the system message (a first
    one is added where there is none: chat templates take a system message first only)."""
    schema = fmt.get("json_schema", {}).get("schema", fmt.get("schema", {}))
    note = ("Answer with one JSON object only, no other text and no code fence, matching this JSON schema:\n"
            + json.dumps(schema, separators=(",", ":")))
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]
