"""One generation: open a stream, call the model step by step, run tools, save the reply.

Steps: the reply of each step is saved as ``pending`` when the step starts (it
gets the prompt's order and the next stepOrder); a step that calls tools is then
saved as ``success``, each tool result follows at the next stepOrder, and the
loop goes on until the model stops calling tools or ``max_steps``. The last
message and the end of the stream are stored in one atomic step.

Beside it: what the reply costs (metering.py), the context's budget (budget.py),
tool calls (tools.py), structured output (structured.py), the thread's title
(titles.py), the app's handlers (app_hooks.py), files for the model (attachments.py).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from threadline.shared import metrics
from threadline.shared.agents import Agent, Tool, ToolContext
from threadline.shared.agents.mcp import mcp_tools
from threadline.shared.agents.request import (
    Caller,
    ReplyRequest,
    RunContext,
    UnknownTool,
    applied,
    call_hook,
    context_of,
    instructions_for,
    resolved,
    tools_named,
)
from threadline.shared.agents.steps import StepInput, StepPlan, StepResult
from threadline.shared.agents.working_memory import note as working_memory_note
from threadline.shared.agents.working_memory import with_working_memory
from threadline.shared.errors import BadRequest, ChatError, Internal
from threadline.shared.generation.app_hooks import RawRelay
from threadline.shared.generation.attachments import attachments
from threadline.shared.generation.budget import within_budget
from threadline.shared.generation.context import reply_parts, to_chat_messages
from threadline.shared.generation.deltas import DeltaWriter
from threadline.shared.generation.metering import Meter, estimated
from threadline.shared.generation.sinks import Sink, untitled
from threadline.shared.generation.structured import read_object, response_format
from threadline.shared.generation.titles import title_of
from threadline.shared.generation.tools import call_tool
from threadline.shared.llm import (
    ChatRequest,
    Finish,
    Model,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    model_for,
)
from threadline.shared.llm.base import (
    Citation,
    Inputs,
    ReasoningSealed,
    RefusalDelta,
    ToolCallDelta,
)
from threadline.shared.partial_json import parse_partial
from threadline.shared.rag.knowledge import Knowledge, Sources, is_passages
from threadline.shared.records import (
    Message,
    Part,
    RefusalPart,
    SourcePart,
    TextPart,
    ToolApprovalRequestPart,
    ToolCallDeltaPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    first_decisions,
    text_of,
)
from threadline.shared.runtime import Runtime
from threadline.shared.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STOPPED = "the reply was stopped before it finished (the worker shut down or the job ran out of time)"
Outcome = Literal["finished", "aborted", "failed", "waiting"]


@dataclass(slots=True)
class GenerationResult:
    """How a generation ended: its stream, the messages it saved, the reply's text/object."""

    stream_id: str
    outcome: Outcome
    messages: list[Message] = field(default_factory=list)
    text: str = ""
    object: Any = None
    usage: Usage = field(default_factory=Usage)


@dataclass(slots=True)
class _Step:
    text: str = ""
    reasoning: str = ""
    signature: str = ""  # of the reasoning, where the provider signs it
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish: str = "stop"
    refusal: str = ""
    model: Model | None = None  # what the step ran with (prepare_step may change them)
    agent: Agent | None = None

    def chars(self) -> int:
        """Characters the model sent in this step (its usage when the server counts none)."""
        return len(self.text) + len(self.reasoning) + sum(len(c.arguments) for c in self.calls)


class Generation:
    """Answers ``prompt`` in its thread with ``agent``, keeping what it produces in ``sink``
    (shared.generation.sinks: the store, or memory only); see the module docstring."""

    def __init__(self, rt: Runtime, agent: Agent, prompt: Message, sink: Sink,
                 model: Model | None = None, *, teams: tuple[str, ...] = (), rate_limited: bool = False,
                 request: ReplyRequest | None = None) -> None:
        """``rt``: the process's parts (its settings, file store, usage ledger and rate limits);
        ``rate_limited``: this reply counts in the app's rate limits (shared.usage.limits): each model
        call reserves its token estimate first (a refusal fails the reply before any cost) and
        settles on its usage. ``request``: the send's context, options and claims
        (shared.agents.request; admitted where the send arrived): one that no longer fits the
        agent fails the reply."""
        settings = rt.settings
        self.settings = settings
        self._rt = rt
        request = request or ReplyRequest()
        self._refused = ""
        self._active = request.options.active_tools if request.options is not None else None
        self._decisions = request.decided  # a person decided on approval requests: run or deny those first
        self._early: list[ToolResultPart] = []
        try:
            agent = applied(agent, request.options, trusted=True)
            context = context_of(agent, request.context)
        except BadRequest as exc:
            self._refused, context = exc.message, None
        self.agent = agent = with_working_memory(agent)
        self.run_context = RunContext(Caller(prompt.user_id, teams, request.admin, request.claims),
                                      sink.thread_id, agent, context)
        self.prompt = prompt
        self.sink = sink
        self.thread_id = sink.thread_id
        self.model = model or model_for(settings, agent.model, provider=agent.provider,
                                        max_retries=agent.max_retries)
        self._saved: list[Message] = []
        self._meter = Meter(agent, prompt, sink.thread_id, rt.usage, rt.limits if rate_limited else None, teams)
        self._raw = RawRelay(agent, self.model, prompt.user_id, sink.thread_id)
        self._sources = Sources()  # document passages this reply drew on (prompt- or tool-based RAG)
        self._passages: Message | None = None  # the first step's, shown again at every step
        self._knowledge = Knowledge(sink.store, sink.memory, prompt.user_id) if sink.memory is not None else None
        self._files = rt.files
        self._shown: list[Part] = []  # what tools made for the reply to show (generated images)
        self._done: list[StepResult] = []  # the steps that called tools, for stop_when and prepare_step
        self._models: dict[str, Model] = {}  # those prepare_step picked, by name
        self._attached: dict[str, list[dict[str, Any]]] = {}  # the context's files as the model gets them

    async def run(self) -> GenerationResult:
        await self.sink.start(self.prompt)
        self._early = await self._decided() if self._decisions else []  # before the reply: history stays in order
        reply = await self._new_reply()
        stream_id, aborted = await self.sink.open_stream(reply, self.agent.name, self.prompt)
        if aborted:  # stopped while it was queued: it ends here, before any model call
            return await self._end(stream_id, reply, _Step(), "aborted", error="aborted")
        if not self._refused:
            self._refused = await self._instructions()
        if self.agent.mcp_servers and not self._refused:
            await self._take_mcp_tools()
        if self._refused:
            return await self._end(stream_id, reply, _Step(), "failed", error=self._refused)
        async with self.sink.watch(stream_id) as stopped:
            result = await self._steps(stream_id, reply, stopped)
        if result.outcome == "finished" and self.agent.auto_title and self.thread_id:
            await self._title(result.text or (text_of(result.messages[-1].parts) if result.messages else ""))
        return result

    async def _instructions(self) -> str:
        """Build the agent's instructions for this reply when a callable makes them; what went
        wrong ("" when nothing did)."""
        if isinstance(self.agent.instructions, str):
            return ""
        try:  # the app's code: the reply fails with what went wrong, the worker goes on
            text = await instructions_for(self.agent, self.run_context)
        except Internal as exc:
            return exc.message
        self.agent = dataclasses.replace(self.agent, instructions=text)
        return ""

    async def _take_mcp_tools(self) -> None:
        """Add the tools of the agent's MCP servers (those the request allows) to this reply's."""
        found = await mcp_tools(self.agent.mcp_servers)
        if self._active is not None:
            found = [t for t in found if t.name in self._active]
        self.agent = dataclasses.replace(self.agent, tools=[*self.agent.tools, *found])

    async def _handled(self, context: list[Message]) -> list[Message]:
        """The context as the agent's ``context_handler`` makes it (ChatError when it fails)."""
        handler = self.agent.context_handler
        if handler is None:
            return context
        out = await call_hook(self.agent, "context handler", handler, self.run_context, list(context))
        if not isinstance(out, list) or not all(isinstance(m, Message) for m in out):
            raise Internal("the agent's context handler must return a list of Message")
        return out

    async def _title(self, answer: str) -> None:
        """Name an untitled thread after its first exchange. A failure is logged; the reply has been
        given already."""
        try:
            if not untitled((await self.sink.store.threads.get(self.thread_id)).title):
                return
            model = self.model if self.agent.title_model is None else model_for(
                self.settings, self.agent.title_model, provider=self.agent.provider, max_retries=1)
            title = await title_of(self.agent, model, self.prompt.text, answer,
                                   lambda usage: self._meter.record(usage, "title", model))
            if title:
                await self.sink.name_thread(title)
        except ChatError as exc:
            log.warning("could not title thread %s: %s", self.thread_id, exc.message)

    async def _steps(self, stream_id: str, reply: Message, stopped: asyncio.Event) -> GenerationResult:
        step = _Step()
        writer = DeltaWriter(self.sink, stream_id, chunking=self.agent.chunking, throttle_ms=self.agent.throttle_ms,
                             object_of=(lambda: parse_partial(step.text)) if self.agent.output else None)
        writer.start()
        try:
            for part in self._early:  # the decided calls' results, kept before this reply began
                writer.part(part)
            for number in range(self.agent.max_steps):
                step = _Step()  # the writer's object_of reads this variable: it follows each step
                try:
                    aborted = await self._call_model(step, writer, stopped, number)
                except ChatError as exc:
                    await writer.flush()
                    return await self._end(stream_id, reply, step, "failed", error=exc.message)
                await writer.flush()
                if aborted or writer.aborted.is_set():
                    await writer.flush(closing=True)  # what came before the abort: deltas == stored text
                    return await self._end(stream_id, reply, step, "aborted", error="aborted")
                await self._meter.step(step.usage, step.model or self.model)
                if step.refusal:
                    return await self._end(stream_id, reply, step, "failed",
                                           error=f"the model refused: {step.refusal}")
                if not step.calls:
                    return await self._end(stream_id, reply, step, "finished")
                reply = self._complete(reply, step)
                await self.sink.step_done(reply)
                self._saved.append(reply)
                waiting, results, approvals = await self._run_tools(step, writer)
                if approvals:  # the step's message keeps the requests; every tab sees them now
                    reply.parts = [*reply.parts, *approvals]
                    await self.sink.step_done(reply)
                    for request in approvals:
                        writer.part(request)
                await writer.flush()
                self._done.append(StepResult(number, step.text, [p for p in reply.parts if isinstance(p, ToolCallPart)],
                                              results))
                try:
                    last = waiting or number == self.agent.max_steps - 1 or await self._stop()
                except ChatError as exc:  # the step stays as it was saved; the reply ends failed on it
                    return await self._end(stream_id, reply, step, "failed", error=exc.message)
                if last:
                    if self._cite(reply):  # no final message: this step's keeps the sources
                        await self.sink.step_done(reply)
                    await self.sink.finish(stream_id, [], "finished")
                    return self._result(stream_id, "waiting" if waiting else "finished", step)
                reply = await self._new_reply()
            return self._result(stream_id, "finished", step)
        except asyncio.CancelledError:
            await self._stopped(stream_id, reply, step)
            raise
        finally:
            await writer.close()

    async def _stopped(self, stream_id: str, reply: Message, step: _Step) -> None:
        """The job was cancelled (worker shutdown, job timeout): end the reply cleanly.

        An agent with ``on_worker_death="retry"`` has its stream handed to the reaper,
        which answers the prompt again; otherwise the reply is failed with the text so far.
        """
        try:
            if not (self.agent.on_worker_death == "retry" and await self.sink.orphan(stream_id)):
                await self._end(stream_id, reply, step, "failed", error=STOPPED)
        except Exception:
            log.exception("could not end the stopped reply in stream %s", stream_id)

    # -- steps -----------------------------------------------------------------

    async def _call_model(self, step: _Step, writer: DeltaWriter, stopped: asyncio.Event, number: int) -> bool:
        """Stream one model call (step ``number``) into ``step``; True when aborted meanwhile."""
        context = self._same_passages(await self.sink.context(self.prompt, self.agent.context_options, self._saved))
        context = await self._handled(context)
        if self.agent.working_memory is not None:  # before the budget: it counts in it
            context = [await self._working_memory(self.agent.working_memory), *context]
        context = await within_budget(self.agent, self.model, self.sink, self.prompt, context,
                                      lambda usage: self._meter.record(usage, "summary", self.model))
        agent, model, context = await self._prepared(number, context)
        step.agent, step.model = agent, model
        files = await attachments(self._files, context, getattr(model, "inputs", Inputs()), agent, self._attached)
        request = ChatRequest(
            messages=to_chat_messages(agent, context, attachments=files,
                                      reasoning_in_history=getattr(model, "reasoning_in_history", False)),
            tools=[t.schema for t in agent.tools],
            response_format=response_format(agent.output),
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
            options=dict(agent.provider_options),
            raw=self._raw if agent.raw_handler is not None else None,
        )
        await self._meter.reserve(request.messages)  # refused here: no model call, no cost
        labels = (model.provider, model.name)
        called = time.perf_counter()
        first = True

        async def consume() -> None:
            nonlocal first
            async for event in model.stream(request):
                if first:
                    first = False
                    metrics.model_first_token.labels(*labels).observe(time.perf_counter() - called)
                if isinstance(event, TextDelta):
                    step.text += event.text
                    writer.text(event.text)
                elif isinstance(event, ReasoningDelta):
                    step.reasoning += event.text
                    writer.reasoning(event.text)
                elif isinstance(event, ReasoningSealed):
                    step.signature = event.signature
                elif isinstance(event, Citation):
                    self._sources.cite(event.url, event.title)
                elif isinstance(event, RefusalDelta):
                    step.refusal += event.text
                elif isinstance(event, ToolCallDelta):
                    writer.part(ToolCallDeltaPart(tool_call_id=event.id, tool_name=event.name,
                                                  args_text_delta=event.arguments))
                elif isinstance(event, ToolCall):
                    step.calls.append(event)
                    writer.part(ToolCallPart(tool_call_id=event.id, tool_name=event.name,
                                             args=_loads(event.arguments)))
                elif isinstance(event, Finish):  # a server that counts nothing is counted here, never free
                    step.usage, step.finish = event.usage or estimated(request.messages, step.chars()), event.reason

        model_task = asyncio.create_task(consume())
        stop = asyncio.create_task(stopped.wait())
        stop_writer = asyncio.create_task(writer.aborted.wait())
        try:
            done, _ = await asyncio.wait({model_task, stop, stop_writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            stop_writer.cancel()
        if model_task in done:
            try:
                model_task.result()
            except ChatError:
                metrics.model_errors.labels(*labels).inc()
                await self._meter.settle(step.usage)
                raise
            finally:
                metrics.model_seconds.labels(*labels).observe(time.perf_counter() - called)
            return False
        await cancel_and_wait(model_task)  # closes the HTTP stream to the model
        return True

    async def _run_tools(self, step: _Step, writer: DeltaWriter
                         ) -> tuple[bool, list[ToolResultPart], list[ToolApprovalRequestPart]]:
        """Run the step's tool calls (those its agent offered), saving each result; (whether a person
        must answer or approve one, the results, the approval requests)."""
        agent = step.agent or self.agent
        waiting, results, approvals = False, [], []
        for call in step.calls:
            tool = agent.tool_named(call.name)
            if tool is not None and tool.handler is None:
                waiting = True
                continue
            if tool is not None and await self._needs_approval(agent, tool, call):
                approvals.append(ToolApprovalRequestPart(approval_id=f"apr_{secrets.token_urlsafe(12)}",
                                                         tool_call_id=call.id, tool_name=call.name,
                                                         args=_loads(call.arguments)))
                waiting = True
                continue
            results.append(await self._keep_result(writer, call.id, call.name,
                                                   *await self._call_tool(agent, call)))
        return waiting, results, approvals

    async def _keep_result(self, writer: DeltaWriter | None, call_id: str, name: str, result: Any,
                           is_error: bool) -> ToolResultPart:
        part = ToolResultPart(tool_call_id=call_id, tool_name=name, result=result, is_error=is_error)
        message = Message(message_id="", thread_id=self.thread_id, user_id=self.prompt.user_id, role="tool",
                          parts=[part], agent_name=self.agent.name)
        self._saved.append(await self.sink.tool_result(message, self.prompt))
        if writer is not None:
            writer.part(part)
        return part

    async def _needs_approval(self, agent: Agent, tool: Tool, call: ToolCall) -> bool:
        """Whether a person approves this call first (a predicate that raises: yes, to be safe)."""
        rule = tool.needs_approval
        if not callable(rule):
            return bool(rule)
        try:
            args = tool.parse_args(call.arguments)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False  # the call fails on its arguments anyway, running nothing
        try:
            return bool(await resolved(rule(self._tool_context(agent, call.id), args)))
        except Exception:
            log.exception("the approval rule of tool %s failed: asking for approval", tool.name)
            return True

    async def _decided(self) -> list[ToolResultPart]:
        """Before the reply: run the calls of this prompt a person approved since, and tell the model
        of those denied (a result saying so), each once; their results."""
        here = await self.sink.store.messages.in_orders(self.thread_id, self.prompt.order, self.prompt.order)
        asked = {p.approval_id: p for m in here for p in m.parts if isinstance(p, ToolApprovalRequestPart)}
        done = {p.tool_call_id for m in here for p in m.parts if isinstance(p, ToolResultPart)}
        kept: list[ToolResultPart] = []
        for decision in first_decisions(here).values():
            request = asked.get(decision.approval_id)
            if request is None or request.tool_call_id in done:
                continue
            done.add(request.tool_call_id)
            if decision.approved:
                call = ToolCall(id=request.tool_call_id, name=request.tool_name,
                                arguments=msgspec.json.encode(request.args).decode())
                result, is_error = await self._call_tool(self.agent, call)
            else:  # as the AI SDK tells its models
                result, is_error = {"type": "execution-denied", "reason": decision.reason}, False
            kept.append(await self._keep_result(None, request.tool_call_id, request.tool_name, result, is_error))
        return kept

    async def _stop(self) -> bool:
        """Whether one of the agent's stop conditions holds after the last step (a condition that
        raises fails the reply: Internal)."""
        conditions = self.agent.stop_when
        for condition in [conditions] if callable(conditions) else conditions:
            if await call_hook(self.agent, "stop condition", condition, list(self._done)):
                return True
        return False

    async def _prepared(self, number: int, context: list[Message]) -> tuple[Agent, Model, list[Message]]:
        """The agent, model and messages of step ``number`` as the agent's ``prepare_step`` plans it
        (Internal when it fails or plans what the agent cannot do)."""
        prepare = self.agent.prepare_step
        if prepare is None:
            return self.agent, self.model, context
        plan = await call_hook(self.agent, "prepare_step", prepare,
                               StepInput(self.run_context, number, list(self._done), list(context)))
        if plan is None:
            return self.agent, self.model, context
        if not isinstance(plan, StepPlan):
            raise Internal(f"prepare_step must return a StepPlan or None, not {type(plan).__name__}")
        changes: dict[str, Any] = {k: v for k, v in (("instructions", plan.instructions),
                                                     ("temperature", plan.temperature),
                                                     ("max_tokens", plan.max_tokens)) if v is not None}
        if plan.active_tools is not None:
            try:
                changes["tools"] = tools_named(self.agent, plan.active_tools)
            except UnknownTool as exc:
                raise Internal(f"prepare_step names a tool the agent does not have: {exc.name!r}") from None
        if plan.options:
            changes["provider_options"] = {**self.agent.provider_options, **plan.options}
        model = self.model
        if plan.model is not None and plan.model != self.model.name:
            if plan.model not in self._models:
                self._models[plan.model] = model_for(self.settings, plan.model, provider=self.agent.provider,
                                                     max_retries=self.agent.max_retries)
            model = self._models[plan.model]
        messages = context if plan.messages is None else list(plan.messages)
        return dataclasses.replace(self.agent, **changes), model, messages

    async def _call_tool(self, agent: Agent, call: ToolCall) -> tuple[Any, bool]:
        return await call_tool(agent, call, self._tool_context(agent, call.id))

    def _tool_context(self, agent: Agent, call_id: str) -> ToolContext:
        return ToolContext(
            user_id=self.prompt.user_id, thread_id=self.thread_id, prompt_message_id=self.prompt.message_id,
            agent=agent, tool_call_id=call_id, knowledge=self._knowledge, sources=self._sources,
            files=self._files, shown=self._shown, settings=self.settings, context=self.run_context.context,
            caller=self.run_context.caller, runtime=self._rt)

    async def _working_memory(self, scope: Literal["user", "thread"]) -> Message:
        memory = await self._rt.store.working_memory.read(user_id=self.prompt.user_id,
                                                          thread_id=self.thread_id if scope == "thread" else None)
        text = working_memory_note(scope, memory.text)
        return Message(message_id="", thread_id=self.thread_id, role="system", text=text, parts=[TextPart(text=text)])

    def _same_passages(self, context: list[Message]) -> list[Message]:
        """Every step sees the document passages of the first (numbered as the model first saw
        them, which the reply's sources keep), even if the documents changed meanwhile."""
        at = next((i for i, m in enumerate(context) if is_passages(m)), None)
        if at is None:
            return context
        if self._passages is None:
            self._passages = context[at]
            self._sources.adopt(self._passages.parts)
        return [*context[:at], self._passages, *context[at + 1:]]

    def _cite(self, reply: Message) -> bool:
        """Put what tools made to show (generated images) and the sources drawn on so far on
        ``reply``; False when there are none."""
        extra: list[Part] = [*self._shown, *self._sources.parts()]
        if not extra:
            return False
        kept: list[Part] = [p for p in reply.parts if not isinstance(p, SourcePart) and p not in self._shown]
        reply.parts = kept + extra
        return True

    # -- messages --------------------------------------------------------------

    async def _new_reply(self) -> Message:
        pending = Message(message_id="", thread_id=self.thread_id, user_id=self.prompt.user_id, role="assistant",
                          status="pending", agent_name=self.agent.name, model=self.model.name,
                          provider=self.model.provider)  # (a reply is for its prompt's writer)
        return await self.sink.new_reply(pending, self.prompt)

    def _complete(self, reply: Message, step: _Step, obj: Any = None) -> Message:
        calls = [ToolCallPart(tool_call_id=c.id, tool_name=c.name, args=_loads(c.arguments)) for c in step.calls]
        done = copy.copy(reply)
        done.status = "success"
        done.text = step.text
        done.parts = reply_parts(step.text, step.reasoning, calls, obj, signature=step.signature)
        if step.refusal:
            done.parts.append(RefusalPart(text=step.refusal))
        done.usage = step.usage
        done.finish_reason = "refusal" if step.refusal else step.finish
        if step.model is not None:  # (prepare_step may have picked another)
            done.model, done.provider = step.model.name, step.model.provider
        return done

    async def _end(self, stream_id: str, reply: Message, step: _Step, outcome: Outcome,
                   error: str | None = None) -> GenerationResult:
        obj = None
        if outcome == "finished" and self.agent.output is not None and not step.refusal:
            try:
                obj = read_object(self.agent.output, step.text)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                outcome, error = "failed", f"the reply does not match the output type: {exc}"
        final = self._complete(reply, step, obj)
        self._cite(final)
        if outcome != "finished":
            final.status, final.error = "failed", error
        await self.sink.finish(stream_id, [final], "finished" if outcome == "finished" else "aborted")
        self._saved.append(final)
        result = self._result(stream_id, outcome, step)
        result.object = obj
        return result

    def _result(self, stream_id: str, outcome: Outcome, step: _Step) -> GenerationResult:
        return GenerationResult(stream_id=stream_id, outcome=outcome, messages=self._saved,
                                text=step.text, usage=self._meter.total)


def _loads(raw: str) -> Any:
    try:
        return msgspec.json.decode(raw or "{}")
    except msgspec.DecodeError:
        return raw
