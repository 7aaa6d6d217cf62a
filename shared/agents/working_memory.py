"""An agent's working memory (``Agent(working_memory="user"|"thread")``): the document is in its context
on every reply (a system message, counted in its context budget) and it keeps it current with the
``update_working_memory`` tool (shared.threads.working_memory stores it)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from threadline.shared.agents import Agent, Tool, ToolContext
from threadline.shared.errors import Unavailable
from threadline.shared.threads.working_memory import MAX_CHARS

TOOL = "update_working_memory"
Scope = Literal["user", "thread"]


class MemoryEdit(msgspec.Struct, forbid_unknown_fields=True):
    op: Annotated[Literal["replace", "append", "forget"], msgspec.Meta(
        description="replace a section's content, append to it, or forget (remove) it")]
    section: Annotated[str, msgspec.Meta(min_length=1, max_length=100,
                                         description="the section's heading, e.g. Preferences")]
    content: Annotated[str, msgspec.Meta(max_length=MAX_CHARS, description="the text (not for forget)")] = ""


def note(scope: Scope, text: str) -> str:
    """The system message that shows the agent its working memory."""
    whose = "the user, across all their conversations" if scope == "user" else "this conversation"
    return (f"Your working memory of {whose} (at most {MAX_CHARS} characters). Keep it current with the "
            f"{TOOL} tool when you learn something worth keeping (a preference, a fact, a goal) or when "
            f"something in it is no longer true.\n\n{text or '(empty)'}")


def with_working_memory(agent: Agent) -> Agent:
    """The agent with its working memory tool, when it keeps a working memory."""
    import dataclasses

    if agent.working_memory is None or agent.tool_named(TOOL) is not None:
        return agent
    return dataclasses.replace(agent, tools=[*agent.tools, _tool(agent.working_memory)])


def _tool(scope: Scope) -> Tool:
    async def handler(ctx: ToolContext, args: MemoryEdit) -> dict[str, object]:
        if ctx.runtime is None:
            raise Unavailable("working memory is not reachable here")
        version, doc = await ctx.runtime.store.working_memory.edit(
            args.op, args.section, args.content, by=f"agent:{ctx.agent.name}", user_id=ctx.user_id,
            thread_id=ctx.thread_id if scope == "thread" else None)
        return {"version": version, "chars": len(doc), "limit": MAX_CHARS}

    return Tool(TOOL, "Change one section of your working memory (Markdown, one `## heading` per section).",
                MemoryEdit, handler)
