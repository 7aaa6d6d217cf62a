"""Structured output: the JSON schema an agent's output type asks the model for, and the reply read
back as that type."""

from __future__ import annotations

from typing import Any

import msgspec

from threadline.shared.agents import inline_schema, strict_schema


def response_format(output: Any) -> dict[str, Any] | None:
    """JSON-schema output for an ``output`` type (None: free text); ``strict`` where the schema
    allows it (the provider may drop it)."""
    if output is None:
        return None
    schema = inline_schema(output)
    strict = strict_schema(schema)
    name = getattr(output, "__name__", "output")
    if strict is not None:
        return {"type": "json_schema", "json_schema": {"name": name, "schema": strict, "strict": True}}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def read_object(output: Any, text: str) -> Any:
    """The reply's text as ``output``, in JSON values; msgspec's error when it does not match."""
    return msgspec.to_builtins(msgspec.json.decode(unfenced(text), type=output))


def unfenced(text: str) -> str:
    """A JSON reply without the code fence a model told the schema in words may still put around it."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and "\n" in body:
        return body[body.index("\n") + 1:-3]
    return text
