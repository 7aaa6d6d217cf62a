"""What a step's job does: call the app's function, or one of the ready agent operations (through
the Python API, which is why this lives with the workers, above it).

Every attempt of a step gets the same key (``current_step().key``). The agent
operations write under a guard named by it (shared.storage.guard), in the same
atomic step as their change: an attempt that runs again after a crash finds the
thread, the message or the prompt it made before instead of making another, and
a reply that was already answered is returned instead of generated again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

import msgspec

from threadline.shared import keys
from threadline.shared.agents import Agent
from threadline.shared.generation.context import fetch_context_messages
from threadline.shared.records import Message, TextPart, Usage
from threadline.shared.storage.guard import Guard
from threadline.shared.workflows.current import StepInfo, running
from threadline.shared.workflows.definition import Outcome, function_at, workflow_named
from threadline.shared.workflows.results import GeneratedText

if TYPE_CHECKING:
    from threadline import Threadline


async def perform(tl: Threadline, spec: dict[str, Any], info: StepInfo, ttl_s: int) -> Any:
    """Do one attempt of a step; its result as JSON values."""
    running(info)
    op = spec.get("op")
    guard = Guard(keys.request_digest("workflow", info.key), ttl_s)
    if op == "call":
        fn = function_at(spec["fn"])
        if inspect.iscoroutinefunction(fn):
            return await fn(*spec.get("args", []), **spec.get("kwargs", {}))
        return await asyncio.to_thread(fn, *spec.get("args", []), **spec.get("kwargs", {}))
    if op == "create_thread":
        thread = await tl.store.threads.create(info.user_id, title=spec.get("title", ""),
                                               summary=spec.get("summary", ""), metadata=spec.get("metadata"),
                                               guard=guard)
        return thread.thread_id
    if op == "save_message":
        message = Message(message_id="", thread_id=spec["threadId"], role=spec.get("role", "assistant"),
                          text=spec["text"], parts=[TextPart(text=spec["text"])], agent_name=spec.get("agentName"))
        _, (saved,) = await tl.store.messages.save(spec["threadId"], info.user_id, [message], guard=guard)
        return saved
    if op in ("generate_text", "generate_object"):
        return await _generate(tl, spec, info, guard)
    if op == "fetch_context":
        thread = await tl.store.threads.get(spec["threadId"], info.user_id)
        agent = tl.agent(spec.get("agent"))
        prompt = Message(message_id="", thread_id=thread.thread_id, user_id=thread.user_id, order=1 << 32,
                         text=spec["prompt"])
        return await fetch_context_messages(tl.store, thread.thread_id, prompt, agent.context_options, tl.memory)
    if op == "on_complete":
        return await _on_complete(tl, info)
    raise ValueError(f"unknown step operation {op!r}")


async def _generate(tl: Threadline, spec: dict[str, Any], info: StepInfo, guard: Guard) -> Any:
    thread = await tl.continue_thread(spec["threadId"], info.user_id)
    agent: Agent = tl.agent(spec.get("agent"), model=spec.get("model"))
    if spec.get("maxSteps"):
        agent = dataclasses.replace(agent, max_steps=int(spec["maxSteps"]))
    wants_object = spec["op"] == "generate_object"
    if wants_object:
        output: Any = function_at(spec["output"]) if spec.get("output") else agent.output
        agent = dataclasses.replace(agent, output=output)
    prompt = Message(message_id="", thread_id=thread.thread_id, role="user", text=spec["prompt"],
                     parts=[TextPart(text=spec["prompt"])])
    _, (prompt,) = await tl.store.messages.save(thread.thread_id, info.user_id, [prompt], guard=guard)
    reply = await answered(tl, thread.thread_id, prompt)
    if reply is None:
        result = await thread.generate_text(agent, prompt_message_id=prompt.message_id, rate_limited=info.limited)
        if result.outcome != "finished" or not result.messages:
            error = result.messages[-1].error if result.messages else None
            raise RuntimeError(f"the agent's reply ended {result.outcome}: {error or 'no reply'}")
        reply = result.messages[-1]
    if wants_object:
        return msgspec.json.decode(reply.text, type=agent.output)
    return GeneratedText(text=reply.text, thread_id=thread.thread_id, message_id=reply.message_id,
                         prompt_message_id=prompt.message_id, outcome="finished", usage=reply.usage or Usage())


async def answered(tl: Threadline, thread_id: str, prompt: Message) -> Message | None:
    """The finished reply to ``prompt`` (an earlier attempt's), if there is one."""
    at_order = await tl.store.messages.in_orders(thread_id, prompt.order, prompt.order)
    last = max(at_order, key=lambda m: m.step_order, default=None)
    if last is None or last.role != "assistant" or last.status != "success" or last.is_tool:
        return None
    return last


async def _on_complete(tl: Threadline, info: StepInfo) -> None:
    view = await tl.workflows.view(info.run_id)
    wf = workflow_named(tl.settings.app_module, view.name)
    if wf.on_complete is None:
        return None
    outcome = Outcome(run_id=view.run_id, workflow=view.name, user_id=view.user_id, status=view.status,
                      result=msgspec.json.decode(view.result) if view.result is not None else None,
                      error=view.error, args=msgspec.json.decode(view.args))
    done = wf.on_complete(outcome)
    if inspect.isawaitable(done):
        await done
    return None
