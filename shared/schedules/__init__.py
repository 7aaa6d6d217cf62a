"""Schedules: an agent prompted or a workflow started on a cron expression or an interval, each slot
fired once across restarts and schedulers (store.py; the scheduler is workers.schedules)."""

from threadline.shared.schedules.records import (
    Action,
    AppSchedule,
    Schedule,
    SendPrompt,
    StartWorkflow,
    Timing,
)
from threadline.shared.schedules.store import Schedules, schedule_id_for

__all__ = ["Action", "AppSchedule", "Schedule", "Schedules", "SendPrompt", "StartWorkflow", "Timing", "schedule_id_for"]
