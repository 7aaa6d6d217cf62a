"""Generation without a thread: one-off calls (classify, extract, a sub-agent's answer) that save
no message and open no stream, yet are counted in the usage ledger and the rate limits as the
user's replies are (messages, tokens, replies in flight).

``agent_tool`` makes an agent a tool of another: the tool's result is the agent's answer (its
object when it has an output type), counted under the calling user.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Sequence
from typing import Any

import msgspec

from threadline.shared.agents import Agent, Tool, ToolContext, agent_named
from threadline.shared.agents.request import ReplyRequest, fixed_chars
from threadline.shared.generation.runner import Generation, GenerationResult
from threadline.shared.generation.sinks import MemorySink, OnDelta
from threadline.shared.records import Message, TextPart
from threadline.shared.runtime import Runtime
from threadline.shared.usage.limits import Who

MAX_DEPTH = 3  # agents calling agents as tools, at most this deep
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("agent_tool_depth", default=0)


async def generate_alone(rt: Runtime, agent: Agent, prompt: str, *, user_id: str, teams: tuple[str, ...] = (),
                         messages: Sequence[Message] = (), request: ReplyRequest | None = None,
                         rate_limited: bool = True, on_delta: OnDelta | None = None) -> GenerationResult:
    """Answer ``prompt`` (after ``messages``) with ``agent`` for ``user_id``, outside any thread.
    With ``rate_limited``, it counts as a message of the user's and waits for a place among their
    replies in flight (RateLimited when over a limit, before any model call)."""
    who = Who(user_id, agent.name, teams)
    if rate_limited:
        await rt.limits.take("messages", who)
        await rt.limits.afford(who, len(prompt) + sum(len(m.text) for m in messages) + fixed_chars(agent),
                               agent.max_tokens)
    prompt_message = Message(message_id="", thread_id="", user_id=user_id, text=prompt, parts=[TextPart(text=prompt)])
    sink = MemorySink(rt.store, "", memory=rt.memory, extra=list(messages), on_delta=on_delta)
    generation = Generation(rt, agent, prompt_message, sink, teams=teams, rate_limited=rate_limited, request=request)
    if not rate_limited:
        return await generation.run()
    async with rt.limits.reply_slot(who, f"alone-{secrets.token_hex(8)}"):
        return await generation.run()


class AgentToolArgs(msgspec.Struct, forbid_unknown_fields=True):
    prompt: str


def agent_tool(agent: Agent | str, description: str, *, name: str | None = None) -> Tool:
    """``agent`` (or the app's agent of that name) as a tool: the model gives it a prompt; its answer
    is the result. It runs as the calling user, in the same worker, counted and rate-limited as
    their replies are; an answer that fails is an error result the calling model sees."""
    tool_name = name or (agent if isinstance(agent, str) else agent.name).replace("-", "_")

    async def ask(ctx: ToolContext, args: AgentToolArgs) -> Any:
        rt: Runtime | None = ctx.runtime
        if rt is None:
            raise RuntimeError("an agent tool needs the generation's runtime")
        depth = _depth.get()
        if depth >= MAX_DEPTH:
            raise RuntimeError(f"agents calling agents as tools go at most {MAX_DEPTH} deep")
        chosen = agent if isinstance(agent, Agent) else agent_named(rt.settings.app_module, agent)
        caller = ctx.caller
        request = ReplyRequest(admin=caller.admin, claims=caller.claims) if caller is not None else None
        token = _depth.set(depth + 1)
        try:
            result = await generate_alone(rt, chosen, args.prompt, user_id=ctx.user_id,
                                          teams=caller.teams if caller is not None else (), request=request)
        finally:
            _depth.reset(token)
        if result.outcome != "finished":
            error = result.messages[-1].error if result.messages else None
            raise RuntimeError(f"agent {chosen.name} did not answer: {error or result.outcome}")
        return result.object if chosen.output is not None else result.text

    return Tool(tool_name, description, AgentToolArgs, ask)
