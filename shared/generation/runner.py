"""One generation: open a stream, call the model step by step, run tools, save the reply.

Steps: the reply of each step is saved as ``pending`` when the step starts (it
gets the prompt's order and the next stepOrder); a step that calls tools is then
saved as ``success``, each tool result follows at the next stepOrder, and the
loop goes on until the model stops calling tools or ``max_steps``. The last
message and the end of the stream are stored in one atomic step.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from threadline.shared import metrics
from threadline.shared.agents import Agent, ToolContext, UsageEvent, inline_schema, strict_schema
from threadline.shared.errors import ChatError
from threadline.shared.generation.attachments import attachments
from threadline.shared.generation.context import reply_parts, to_chat_messages
from threadline.shared.generation.deltas import DeltaWriter
from threadline.shared.generation.sinks import Sink, untitled
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
    RawEvent,
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
    ToolCallDeltaPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    text_of,
)
from threadline.shared.runtime import Runtime
from threadline.shared.usage.ledger import Kind, UsageEntry
from threadline.shared.usage.limits import Who, estimate_tokens

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


class Generation:
    """Answers ``prompt`` in its thread with ``agent``, keeping what it produces in ``sink``
    (shared.generation.sinks: the store, or memory only); see the module docstring."""

    def __init__(self, rt: Runtime, agent: Agent, prompt: Message, sink: Sink,
                 model: Model | None = None, *, teams: tuple[str, ...] = (), rate_limited: bool = False) -> None:
        """``rt``: the process's parts (its settings, file store, usage ledger and rate limits);
        ``rate_limited``: this reply counts in the app's rate limits (shared.usage.limits): each model
        call reserves its token estimate first (a refusal fails the reply before any cost) and
        settles on its usage."""
        settings = rt.settings
        self.settings = settings
        self.agent = agent
        self.prompt = prompt
        self.sink = sink
        self.thread_id = sink.thread_id
        self.model = model or model_for(settings, agent.model, provider=agent.provider,
                                        max_retries=agent.max_retries)
        self._saved: list[Message] = []
        self._usage = Usage()
        self._raw_two: bool | None = None  # the raw handler takes (kind, payload), not (event)
        self._sources = Sources()  # document passages this reply drew on (prompt- or tool-based RAG)
        self._passages: Message | None = None  # the first step's, shown again at every step
        self._knowledge = Knowledge(sink.store, sink.memory, prompt.user_id) if sink.memory is not None else None
        self._files = rt.files
        self._shown: list[Part] = []  # what tools made for the reply to show (generated images)
        self._attached: dict[str, list[dict[str, Any]]] = {}  # the context's files as the model gets them
        self._ledger = rt.usage
        self._limits = rt.limits if rate_limited and rt.limits.has("tokens") else None
        self._who = Who(prompt.user_id, agent.name, teams)
        self._reserved = 0  # tokens the model call in flight reserved

    async def run(self) -> GenerationResult:
        await self.sink.start(self.prompt)
        reply = await self._new_reply()
        stream_id, aborted = await self.sink.open_stream(reply, self.agent.name, self.prompt)
        if aborted:  # stopped while it was queued: it ends here, before any model call
            return await self._end(stream_id, reply, _Step(), "aborted", error="aborted")
        async with self.sink.watch(stream_id) as stopped:
            result = await self._steps(stream_id, reply, stopped)
        if result.outcome == "finished" and self.agent.auto_title:
            await self._title(result.text or (text_of(result.messages[-1].parts) if result.messages else ""))
        return result

    async def _title(self, answer: str) -> None:
        """Name an untitled thread after its first exchange: one short model call. A failure is
        logged; the reply has been given already."""
        try:
            if not untitled((await self.sink.store.threads.get(self.thread_id)).title):
                return
            model = self.model if self.agent.title_model is None else model_for(
                self.settings, self.agent.title_model, provider=self.agent.provider, max_retries=1)
            request = ChatRequest(messages=[
                {"role": "system", "content": "Write a title of 2 to 6 words for the conversation below. "
                                              "Answer with the title only: no quotes, no punctuation at the end."},
                {"role": "user", "content": f"User: {self.prompt.text[:1500]}\n\nAssistant: {answer[:1500]}"},
            ], temperature=0.2, max_tokens=24, options=dict(self.agent.provider_options))
            text = ""
            async for event in model.stream(request):
                if isinstance(event, TextDelta):
                    text += event.text
                elif isinstance(event, Finish) and event.usage is not None:
                    await self._record(event.usage, "title", model)
            title = clean_title(text)
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
            for number in range(self.agent.max_steps):
                step = _Step()  # the writer's object_of reads this variable: it follows each step
                try:
                    aborted = await self._call_model(step, writer, stopped)
                except ChatError as exc:
                    await writer.flush()
                    return await self._end(stream_id, reply, step, "failed", error=exc.message)
                await writer.flush()
                if aborted or writer.aborted.is_set():
                    await writer.flush(closing=True)  # what came before the abort: deltas == stored text
                    return await self._end(stream_id, reply, step, "aborted", error="aborted")
                await self._count_usage(step)
                if step.refusal:
                    return await self._end(stream_id, reply, step, "failed",
                                           error=f"the model refused: {step.refusal}")
                if not step.calls:
                    return await self._end(stream_id, reply, step, "finished")
                reply = self._complete(reply, step)
                await self.sink.step_done(reply)
                self._saved.append(reply)
                waiting = await self._run_tools(step, writer)
                await writer.flush()
                if waiting or number == self.agent.max_steps - 1:
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

    async def _call_model(self, step: _Step, writer: DeltaWriter, stopped: asyncio.Event) -> bool:
        """Stream one model call into ``step``; True when aborted meanwhile."""
        context = self._same_passages(await self.sink.context(self.prompt, self.agent.context_options, self._saved))
        context = await self._within_budget(context)
        files = await attachments(self._files, context, getattr(self.model, "inputs", Inputs()), self.agent,
                                  self._attached)
        request = ChatRequest(
            messages=to_chat_messages(self.agent, context, attachments=files,
                                      reasoning_in_history=getattr(self.model, "reasoning_in_history", False)),
            tools=[t.schema for t in self.agent.tools],
            response_format=self._response_format(),
            temperature=self.agent.temperature,
            max_tokens=self.agent.max_tokens,
            options=dict(self.agent.provider_options),
            raw=self._raw if self.agent.raw_handler is not None else None,
        )

        if self._limits is not None:  # refused here: no model call, no cost
            self._reserved = estimate_tokens(_request_chars(request.messages), self.agent.max_tokens)
            await self._limits.take("tokens", self._who, self._reserved)
        labels = (self.model.provider, self.model.name)
        called = time.perf_counter()
        first = True

        async def consume() -> None:
            nonlocal first
            async for event in self.model.stream(request):
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
                    step.usage, step.finish = event.usage or _estimated(request.messages, step), event.reason

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
                await self._settle(step.usage)
                raise
            finally:
                metrics.model_seconds.labels(*labels).observe(time.perf_counter() - called)
            return False
        model_task.cancel()  # closes the HTTP stream to the model
        with contextlib.suppress(BaseException):
            await model_task
        return True

    async def _run_tools(self, step: _Step, writer: DeltaWriter) -> bool:
        """Run the step's tool calls, saving each result; True when a person must answer one."""
        waiting = False
        for call in step.calls:
            tool = self.agent.tool_named(call.name)
            if tool is not None and tool.handler is None:
                waiting = True
                continue
            result, is_error = await self._call_tool(call)
            part = ToolResultPart(tool_call_id=call.id, tool_name=call.name, result=result, is_error=is_error)
            message = Message(message_id="", thread_id=self.thread_id, role="tool", parts=[part],
                              agent_name=self.agent.name)
            self._saved.append(await self.sink.tool_result(message, self.prompt))
            writer.part(part)
        return waiting

    async def _call_tool(self, call: ToolCall) -> tuple[Any, bool]:
        tool = self.agent.tool_named(call.name)
        if tool is None:
            return f"unknown tool {call.name!r}", True
        try:
            args = tool.parse_args(call.arguments)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return f"invalid arguments for {call.name}: {exc}", True
        ctx = ToolContext(user_id=self.prompt.user_id, thread_id=self.thread_id,
                          prompt_message_id=self.prompt.message_id, agent=self.agent, tool_call_id=call.id,
                          knowledge=self._knowledge, sources=self._sources, files=self._files,
                          shown=self._shown, settings=self.settings)
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

    async def _within_budget(self, context: list[Message]) -> list[Message]:
        """Apply the thread's summary, and fold the oldest messages into it when over budget.

        Messages up to ``summarizedThroughOrder`` (thread metadata) are replaced by the
        thread's summary; when the rest still exceeds ``context_budget_chars``, the oldest
        of them are summarized (by the agent's model) into the summary instead of being
        silently cut.
        """
        budget = self.agent.context_budget_chars
        if budget is None:
            return context
        summary, stored_through = await self.sink.summary()
        through = stored_through
        kept = [m for m in context if m.role == "system" or m.order > through or m.order < 0]
        while _chars(kept) + len(summary) > budget:
            older = sorted({m.order for m in kept if 0 < m.order < self.prompt.order})
            if not older:
                break
            cut = older[0]
            folded = [m for m in kept if m.order == cut]
            summary = await self._summarize(summary, folded)
            through = max(through, cut)
            kept = [m for m in kept if m.order != cut]
        if through > stored_through:
            await self.sink.keep_summary(summary, through)
        if not summary:
            return kept
        note = f"Summary of the earlier conversation: {summary}"
        return [Message(message_id="", thread_id=self.thread_id, role="system", text=note,
                        parts=[TextPart(text=note)]), *kept]

    async def _summarize(self, summary: str, messages: list[Message]) -> str:
        transcript = "\n".join(f"{m.role}: {m.text}" for m in messages if m.text)
        request = ChatRequest(messages=[
            {"role": "system", "content": "Update the running summary of a conversation. Keep every fact "
                                          "that may matter later; answer with the summary only."},
            {"role": "user", "content": f"Summary so far: {summary or '(none)'}\n\nNew messages:\n{transcript}"},
        ], temperature=0, options=dict(self.agent.provider_options))
        text = ""
        async for event in self.model.stream(request):
            if isinstance(event, TextDelta):
                text += event.text
            elif isinstance(event, Finish) and event.usage is not None:
                await self._record(event.usage, "summary")
        return text.strip() or summary

    # -- messages --------------------------------------------------------------

    async def _new_reply(self) -> Message:
        pending = Message(message_id="", thread_id=self.thread_id, role="assistant", status="pending",
                          agent_name=self.agent.name, model=self.model.name, provider=self.model.provider)
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
        return done

    async def _end(self, stream_id: str, reply: Message, step: _Step, outcome: Outcome,
                   error: str | None = None) -> GenerationResult:
        obj = None
        if outcome == "finished" and self.agent.output is not None and not step.refusal:
            try:
                obj = msgspec.to_builtins(msgspec.json.decode(unfenced(step.text), type=self.agent.output))
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
                                text=step.text, usage=self._usage)

    def _response_format(self) -> dict[str, Any] | None:
        """JSON-schema output; ``strict`` where the schema allows it (the provider may drop it)."""
        if self.agent.output is None:
            return None
        schema = inline_schema(self.agent.output)
        strict = strict_schema(schema)
        name = getattr(self.agent.output, "__name__", "output")
        if strict is not None:
            return {"type": "json_schema", "json_schema": {"name": name, "schema": strict, "strict": True}}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}

    async def _record(self, usage: Usage, kind: Kind, model: Model | None = None) -> None:
        """Keep a model call's usage in the ledger (a storage failure is logged: the reply goes on)."""
        model = model or self.model
        try:
            await self._ledger.record(UsageEntry(
                at=int(time.time() * 1000), user_id=self.prompt.user_id, thread_id=self.thread_id,
                agent=self.agent.name, provider=model.provider, model=model.name, kind=kind,
                input=usage.prompt_tokens, output=usage.completion_tokens, cached=usage.cached_tokens,
                reasoning=usage.reasoning_tokens))
        except ChatError as exc:
            log.warning("usage of a %s call not recorded: %s", kind, exc.message)

    async def _settle(self, usage: Usage | None) -> None:
        """Settle the model call's token reservation: its real usage replaces the estimate (a call
        that failed without usage gives the reservation back)."""
        reserved, self._reserved = self._reserved, 0
        if self._limits is None or not reserved:
            return
        try:
            await self._limits.settle("tokens", self._who, (usage.total_tokens if usage else 0) - reserved)
        except ChatError as exc:
            log.warning("token reservation not settled: %s", exc.message)

    async def _count_usage(self, step: _Step) -> None:
        await self._settle(step.usage)
        if step.usage is None:
            return
        await self._record(step.usage, "step")
        u = self._usage
        for name in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"):
            setattr(u, name, getattr(u, name) + getattr(step.usage, name))
            if name != "total_tokens" and getattr(step.usage, name):
                metrics.tokens.labels(self.model.provider, self.model.name, name.removesuffix("_tokens")).inc(
                    getattr(step.usage, name))
        if self.agent.usage_handler is not None:
            await _call_handler(self.agent.usage_handler, UsageEvent(
                user_id=self.prompt.user_id, thread_id=self.thread_id, agent_name=self.agent.name,
                model=self.model.name, provider=self.model.provider, usage=step.usage))

    async def _raw(self, kind: str, payload: Any) -> None:
        handler = self.agent.raw_handler
        if handler is None:
            return
        if self._raw_two is None:
            self._raw_two = _takes_two(handler)
        if self._raw_two:
            await _call_handler(handler, kind, payload)
            return
        await _call_handler(handler, RawEvent(kind, payload, user_id=self.prompt.user_id,
                                              thread_id=self.thread_id, agent_name=self.agent.name,
                                              provider=self.model.provider, model=self.model.name))


async def _call_handler(handler: Any, *args: Any) -> None:
    """Run an app's handler, sync or async; a failing one is logged and never breaks the reply."""
    try:
        result = handler(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("handler %s failed", getattr(handler, "__name__", handler))


def _takes_two(handler: Any) -> bool:
    """A raw handler written as (kind, payload) rather than (event)."""
    try:
        params = [p for p in inspect.signature(handler).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def _chars(messages: list[Message]) -> int:
    return sum(len(m.text) for m in messages)


def _estimated(messages: list[dict[str, Any]], step: _Step) -> Usage:
    """The usage of a model call whose server reported none, from the text sent and received."""
    prompt = math.ceil(_request_chars(messages) / 4)
    answer = math.ceil((len(step.text) + len(step.reasoning) + sum(len(c.arguments) for c in step.calls)) / 4)
    return Usage(prompt_tokens=prompt, completion_tokens=answer, total_tokens=prompt + answer, estimated=True)


def _request_chars(messages: list[dict[str, Any]]) -> int:
    """Characters of text in messages as sent to the model (an image or file block counts as
    4,000, about a thousand tokens)."""
    total = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(b.get("text", "")) if b.get("type") == "text" else 4000 for b in content)
        total += len(json.dumps(m.get("tool_calls"))) if m.get("tool_calls") else 0
    return total


def _loads(raw: str) -> Any:
    try:
        return msgspec.json.decode(raw or "{}")
    except msgspec.DecodeError:
        return raw


def clean_title(text: str) -> str:
    """A model's title answer as a title: its first line, without quotes or markup, at most 8 words."""
    line = next((x for x in text.strip().splitlines() if x.strip()), "")
    words = line.strip().strip("\"'\u201c\u201d\u2018\u2019*#`").strip().rstrip(".!").split()
    return " ".join(words[:8])[:80]


def unfenced(text: str) -> str:
    """A JSON reply without the code fence a model told the schema in words may still put around it."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and "\n" in body:
        return body[body.index("\n") + 1:-3]
    return text
