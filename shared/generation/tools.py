"""Running a step's tool calls: each call's arguments checked against its tool, the handler run
(sync ones on a thread), and any failure given to the model as the call's result."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import msgspec

from threadline.shared.agents import Agent, ToolContext
from threadline.shared.llm import ToolCall

log = logging.getLogger(__name__)


async def call_tool(agent: Agent, call: ToolCall, ctx: ToolContext) -> tuple[Any, bool]:
    """(the result in JSON values, whether it is an error) of one call (``ctx`` names it)."""
    tool = agent.tool_named(call.name)
    if tool is None:
        return f"unknown tool {call.name!r}", True
    try:
        args = tool.parse_args(call.arguments)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"invalid arguments for {call.name}: {exc}", True
    assert tool.handler is not None
    try:
        if inspect.iscoroutinefunction(tool.handler):
            result = await tool.handler(ctx, args)
        else:
            result = await asyncio.to_thread(tool.handler, ctx, args)
        return msgspec.to_builtins(result), False
    except Exception as exc:  # a failing tool is a result the model sees, not a crashed job
        log.info("tool %s raised %r", call.name, exc)
        return f"{type(exc).__name__}: {exc}", True
