"""The scheduler: fires due schedules (shared.schedules), in the cron process (``python -m threadline.workers
cron``); any number may run.

A firing takes the schedule (one taker; another takes it again after SCHEDULE_LEASE_MS if this one
dies), does its action for the slot it was due at, then records it. The action is keyed by the
schedule and the slot, so doing it twice (a scheduler that died after acting and before recording)
changes nothing the second time: a prompt is saved under a write record of that key (the same
message, whose reply job is named after it) and a workflow run is started with it as its key (the
same run).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from threadline.server.reply_queue import ReplyQueue
from threadline.shared import runtime
from threadline.shared.app_module import AppModuleError, declared_list
from threadline.shared.errors import ChatError, NotFound
from threadline.shared.faults import crash_point
from threadline.shared.records import Message, TextPart
from threadline.shared.runtime import Runtime
from threadline.shared.schedules import AppSchedule, Schedule, SendPrompt
from threadline.shared.storage.guard import Guard
from threadline.shared.workflows.definition import workflow_named

log = logging.getLogger(__name__)

POLL_S = 0.5


def firing_key(schedule_id: str, slot: int) -> str:
    return f"schedule:{schedule_id}:{slot}"


async def run(poll_s: float = POLL_S) -> None:
    """Fire due schedules, forever."""
    rt = runtime.for_this_loop()
    queue = ReplyQueue(rt.settings, rt.store)
    try:
        await rt.schedules.declare(declared_list(rt.settings.app_module, "SCHEDULES", AppSchedule))
    except (ChatError, AppModuleError) as exc:
        log.error("the app's SCHEDULES were not applied: %s", exc)
    while True:
        try:
            for schedule_id, slot, take in await rt.schedules.take_due(rt.settings.schedule_lease_ms):
                await fire(rt, queue, schedule_id, slot, take)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis away: what was taken comes back after its lease
            log.warning("schedules: %s", exc)
        await asyncio.sleep(poll_s)


async def fire(rt: Runtime, queue: ReplyQueue, schedule_id: str, slot: int, take: int) -> None:
    try:
        schedule = await rt.schedules.get(schedule_id)
    except NotFound:
        return
    try:
        await asyncio.wait_for(act(rt, queue, schedule, slot), rt.settings.schedule_lease_ms / 2000)
    except ChatError as exc:  # a thread deleted, an agent or workflow the app no longer has: a firing all the same
        log.warning("schedule %s (%s) fired for %d and could not act: %s", schedule_id, schedule.name, slot,
                    exc.message)
    crash_point("schedule:acted")  # fault tests: the scheduler dies between the action and its record
    if not await rt.schedules.fired(schedule, take, slot):
        log.info("schedule %s: another scheduler took it meanwhile", schedule_id)


async def act(rt: Runtime, queue: ReplyQueue, schedule: Schedule, slot: int) -> None:
    key = firing_key(schedule.schedule_id, slot)
    action = schedule.action
    if isinstance(action, SendPrompt):
        thread = await rt.store.threads.get(action.thread_id, schedule.user_id, need="writer")
        agent = queue.agent(action.agent_name)
        guard = Guard(hashlib.sha256(key.encode()).hexdigest(), rt.settings.idempotency_ttl_s)
        message = Message(message_id="", thread_id=action.thread_id, text=action.prompt,
                          parts=[TextPart(text=action.prompt)],
                          metadata={"schedule": {"scheduleId": schedule.schedule_id, "slot": slot}})
        _, (saved,) = await rt.store.messages.save(action.thread_id, schedule.user_id, [message], guard=guard)
        crash_point("schedule:saved")  # fault tests: the prompt is kept, its reply not asked for yet
        if thread.takeover is None:  # a person answers in a thread taken over
            await queue.enqueue(saved, agent)
        return
    wf = workflow_named(rt.settings.app_module, action.name)
    await rt.workflows.start(wf, schedule.user_id, action.args, key=key,
                             limited=not schedule.schedule_id.startswith("app_"))  # a user's counts as theirs
