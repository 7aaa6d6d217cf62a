"""``tools.approve``: a person's decision on a tool call that waits for approval.

A reply whose model called a tool marked ``needs_approval`` ends with the call and a
``tool-approval-request`` part on its step's message. The decision is saved as a ``tool``
message with a ``tool-approval-response`` part, guarded by a record named after the approval
(in the same atomic step as the save), so exactly one decision stands however many tabs decide
at once; a later one is told which decision stood. Once every request of that step is decided,
the reply goes on in a worker (one job per step, whoever asks): approved calls run, denied ones
tell the model so (shared.generation.runner).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Annotated

import msgspec

from threadline.server.context import Context
from threadline.server.mutations import Outcome, mutation
from threadline.shared import keys
from threadline.shared.agents.request import ReplyRequest
from threadline.shared.errors import Conflict, NotFound, Unavailable
from threadline.shared.records import (
    Message,
    ToolApprovalRequestPart,
    ToolApprovalResponsePart,
    first_decisions,
)
from threadline.shared.storage.guard import Guard

SEARCHED = 100  # the newest messages of the thread searched for the request
DECISION_TTL_S = 30 * 86400  # how long the record of a decision outlives it

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ToolsApprove(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    thread_id: Id
    approval_id: Id
    approved: bool
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


@mutation("tools.approve", ToolsApprove)
async def approve(ctx: Context, a: ToolsApprove) -> Outcome:
    """{approvalId, toolCallId, approved, reason, decided}: ``decided`` false when another decision
    stood already (its ``approved`` and ``reason`` are returned)."""
    generation = ctx.services.generation
    if generation is None:
        raise Unavailable("generation is not available on this server")
    _, page = await ctx.store.messages.list(a.thread_id, ctx.user_id, num_items=SEARCHED)
    found = next(((m, p) for m in page.page for p in m.parts
                  if isinstance(p, ToolApprovalRequestPart) and p.approval_id == a.approval_id), None)
    if found is None:
        raise NotFound(f"no approval request {a.approval_id} among the thread's newest {SEARCHED} messages")
    step, request = found
    here = await ctx.store.messages.in_orders(a.thread_id, step.order, step.order)
    prompt = next((m for m in here if m.role == "user"), None)
    if prompt is None:
        raise Conflict("the prompt of that tool call is gone")
    decision = ToolApprovalResponsePart(approval_id=a.approval_id, tool_call_id=request.tool_call_id,
                                        approved=a.approved, reason=a.reason)
    stood = first_decisions(here).get(a.approval_id)
    decided = stood is None
    if stood is None:
        digest = hashlib.sha256(f"approval\0{a.thread_id}\0{a.approval_id}".encode()).hexdigest()
        await ctx.store.messages.save(
            a.thread_id, ctx.user_id, [Message(message_id="", thread_id="", role="tool", parts=[decision])],
            prompt_message_id=prompt.message_id, guard=Guard(digest, DECISION_TTL_S))
        here = await ctx.store.messages.in_orders(a.thread_id, step.order, step.order)
        stood = first_decisions(here).get(a.approval_id, decision)
        decided = stood == decision  # (another tab's stands when it was saved first)
        asked = {p.approval_id for m in here for p in m.parts if isinstance(p, ToolApprovalRequestPart)}
        if asked <= set(first_decisions(here)):  # every request of the step decided: the reply goes on
            agent = generation.agent(step.agent_name or None)
            teams, request_of = await _asked_with(ctx, step)
            await generation.enqueue(prompt, agent, trigger_id=f"{step.message_id}-decided", teams=teams,
                                     request=dataclasses.replace(request_of, decided=True))
    version = await ctx.store.threads.version(a.thread_id)
    value = {"approvalId": a.approval_id, "toolCallId": request.tool_call_id, "approved": stood.approved,
             "reason": stood.reason, "decided": decided}
    return Outcome(value, version, [keys.thread_channel(a.thread_id)])


async def _asked_with(ctx: Context, step: Message) -> tuple[tuple[str, ...], ReplyRequest]:
    """The teams and request (context, options, claims) of the reply that asked, so the reply that
    goes on answers the same request: read from its job while RQ keeps it (jobs.RESULT_TTL_S after
    it ended); later, the decider's own teams and claims with the agent's defaults."""
    assert ctx.services.generation is not None
    streams = [s for s in await ctx.store.streams.list(step.thread_id) if s.order == step.order]
    record = await ctx.store.streams.get(streams[-1].stream_id) if streams else None
    if record is not None and record.job_id:
        teams, asked = await ctx.services.generation.request_of(record.job_id)
        if teams or asked != ReplyRequest():
            return teams, asked
    return ctx.identity.teams, ReplyRequest(admin=ctx.identity.admin, claims=ctx.identity.claims)



