"""The journal of workflow runs in Redis, the store of record.

A run is a hash (its name, user, status, arguments, result) with its steps: one
JSON record each (kind, name, status, attempt...), their inputs and results. Every
change is one Lua script (lua/wf_*.lua) on the run's slot that writes the change, the
run's version and its change notices together, so a crash anywhere leaves either
the whole change or none of it. What must change in another slot is a follow-up
recorded in the same step (shared.storage.outbox), each idempotent: the user's list
of runs (and the playground's list of every run) hears of a run's start, its place in a pool and
its end; a kind's work pool
(a cap on its running runs) gives places and takes them back; a child run starts,
is canceled with its parent, and settles its parent's step when it ends.

What must happen next is a timer in the sorted set of the run's partition: ``d|run``
(a replay pass is due) and ``s|run|step`` (a step to hand to a worker, a sleep that
ends, an event that did not come in time, a running step's lease). Whoever fires a
timer moves it a lease ahead; a worker that takes the work keeps renewing it, and
finishing removes it. So work whose worker died comes due again by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from threadline.shared import keys
from threadline.shared.clock import now_ms
from threadline.shared.config import Settings
from threadline.shared.errors import BadRequest, Conflict, NotFound
from threadline.shared.ids import new_run_id, run_id_for
from threadline.shared.storage import outbox, partitions
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.pagination import Page, score_bound
from threadline.shared.storage.scripts import Script, Scripts, lua
from threadline.shared.webhooks import runs as _webhook_events  # noqa: F401  (registers the follow-up of a run's end)
from threadline.shared.workflows.definition import Workflow

WF_CANCEL = lua(__file__, "wf_cancel")
WF_CHILD_DONE = lua(__file__, "wf_child_done")
WF_COMMIT = lua(__file__, "wf_commit")
WF_EVENT = lua(__file__, "wf_event")
WF_FIRE = lua(__file__, "wf_fire")
WF_GRANT = lua(__file__, "wf_grant")
WF_POOL_RELEASE = lua(__file__, "wf_pool_release")
WF_POOL_TAKE = lua(__file__, "wf_pool_take")
WF_START = lua(__file__, "wf_start")
WF_STEP_FINISH = lua(__file__, "wf_step_finish")
WF_STEP_RENEW = lua(__file__, "wf_step_renew")
WF_STEP_START = lua(__file__, "wf_step_start")
WF_USER = lua(__file__, "wf_user")

MAX_EVENTS_KEPT = 100  # events a run keeps before any step waits for them
MAX_EVENT_BYTES = 256 * 1024
MAX_VALUE_BYTES = 1 << 20  # a run's arguments, a step's result (keep big things in files or documents)
RELEASED_MS = 86_400_000  # a run that gave its pool place back is remembered this long (late follow-ups)



class StepView(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """One step of a run as the journal has it."""

    id: str
    kind: str  # job (a function or an agent operation), sleep, event, child
    name: str
    status: str  # scheduled, running, retrying, sleeping, waiting, completed, failed, canceled
    seq: int = 0
    attempt: int = 0
    attempts: int = 1
    created_at: int = 0
    first_started_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    due_at: int | None = None
    event: str | None = None
    child: str | None = None
    error: str | None = None
    error_kind: str | None = None  # failed, timeout, lost, canceled
    last_error: str | None = None
    result: msgspec.Raw | None = None


class RunView(msgspec.Struct, rename="camel", kw_only=True):
    """A run with its steps (in the order they were first taken)."""

    run_id: str
    name: str
    user_id: str
    status: str  # queued, running, completed, failed, canceled
    version: int
    created_at: int
    updated_at: int
    finished_at: int | None = None
    args: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw | None = None
    error: dict[str, Any] | None = None
    parent: str | None = None
    parent_step: str | None = None
    events_kept: int = 0
    steps: list[StepView] = []


class TakenStep(NamedTuple):
    """An attempt a worker took: the step's input, the run's user and workflow, and whether the run
    counts in the user's rate limits (a client started it)."""

    input: bytes
    user_id: str
    workflow: str
    limited: bool


class Journal:
    """Runs and their steps; every method is one atomic change (or a plain read)."""

    def __init__(self, redis: Client, scripts: Scripts, *, retention_s: int, lease_ms: int) -> None:
        self.redis = redis
        self._scripts = scripts
        self.retention_s = retention_s
        self.lease_ms = lease_ms

    async def _run(self, script: Script, run_id: str, args: Sequence[Any]) -> Any:
        """Run a workflow script on ``run_id``, do the follow-ups it recorded; its result."""
        return await _on_run(self.redis, self._scripts, script, run_id, args)

    @classmethod
    def from_settings(cls, redis: Client, scripts: Scripts, settings: Settings) -> Journal:
        return cls(redis, scripts, retention_s=settings.workflow_retention_s, lease_ms=settings.workflow_lease_ms)

    # -- control ---------------------------------------------------------------------------

    async def start(self, wf: Workflow, user_id: str, args: Any, *, key: str | None = None,
                    limited: bool = False) -> tuple[str, bool]:
        """Start a run of ``wf`` for ``user_id``: (its id, whether it is new). With ``key``, a second
        start with the same key gets the first run (for the retention time). ``limited``: a run a
        client started, whose agent steps (its child runs' too) count in the user's rate limits."""
        raw = msgspec.json.encode(wf.parse_args(args))
        if len(raw) > MAX_VALUE_BYTES:
            raise BadRequest(f"a workflow's args are at most {MAX_VALUE_BYTES} bytes of JSON")
        run_id = run_id_for(keys.request_digest("workflow", user_id, key)) if key else new_run_id()
        made, created = await self._run(WF_START, run_id, [
            run_id, wf.name, user_id, raw, now_ms(), wf.max_running, on_complete_input(wf), "1" if limited else "0",
            "", ""])
        return text(made), bool(created)

    async def cancel(self, run_id: str, reason: str = "canceled") -> bool:
        """Cancel a run that has not ended (its running steps stop, its child runs are canceled)."""
        return bool(await self._run(WF_CANCEL, run_id, [run_id, now_ms(), self.retention_s, reason, "0"]))

    async def send_event(self, run_id: str, name: str, payload: Any = None) -> str:
        """Give the run an event: the first step waiting for ``name`` gets ``payload``, else the next
        one that waits for it. Returns the step's id, or "" when the event is kept."""
        if not name or "\n" in name or len(name) > 200:
            raise BadRequest("an event name is 1..200 characters, on one line")
        raw = msgspec.json.encode(payload)
        if len(raw) > MAX_EVENT_BYTES:
            raise BadRequest(f"an event's payload is at most {MAX_EVENT_BYTES} bytes of JSON")
        reply = await self._run(WF_EVENT, run_id, [run_id, name, raw, now_ms(), MAX_EVENTS_KEPT])
        outcome = text(reply[0])
        if outcome == "missing":
            raise NotFound(f"no workflow run {run_id}")
        if outcome == "ended":
            raise Conflict(f"run {run_id} has ended")
        if outcome == "full":
            raise Conflict(f"run {run_id} keeps {MAX_EVENTS_KEPT} events nothing waits for; no more")
        return text(reply[1]) if outcome == "delivered" else ""

    # -- the engine's side -------------------------------------------------------------------

    async def snapshot(self, run_id: str) -> tuple[dict[str, str], dict[str, StepView], dict[str, bytes]]:
        """The run's fields, its steps by id and their results, read at one moment."""
        with redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(keys.workflow(run_id, "run"))
                pipe.hgetall(keys.workflow(run_id, "steps"))
                pipe.hgetall(keys.workflow(run_id, "results"))
                run, steps, results = await pipe.execute()
        fields = {text(k): text(v) for k, v in run.items()}
        return (fields, {text(k): _step_decoder.decode(v) for k, v in steps.items()},
                {text(k): v for k, v in results.items()})

    async def commit(self, run_id: str, version: str, ops: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
        """Apply a pass's decisions if the run's version is still ``version``: ("ok", steps to hand
        to workers now), ("stale", []) or ("ended", [])."""
        reply = await self._run(WF_COMMIT, run_id, [
            run_id, version, now_ms(), self.lease_ms, self.retention_s, msgspec.json.encode(list(ops))])
        return text(reply[0]), [text(r) for r in reply[1:]]

    async def take_tick(self, every_ms: int) -> bool:
        """Whether this process walks the timers this poll interval: the first of the workers to ask
        in it does (one walk of every partition per interval, however many workers poll)."""
        with redis_errors():
            return bool(await self.redis.set(keys.WORKFLOW_TIMERS_TICK, b"1", nx=True, px=max(1, every_ms * 9 // 10)))

    async def due(self, limit: int = 100) -> list[str]:
        """Timers due now (of every partition)."""
        with redis_errors():
            return [text(m) for m in await partitions.due(self._scripts, keys.WORKFLOW_TIMERS, now_ms(), limit)]

    async def fire(self, member: str) -> list[str]:
        """Take a due timer: ["drive", run], ["step", run, step, attempt] or ["none"]."""
        run_id = member[2:].partition("|")[0]
        return [text(r) for r in await self._run(WF_FIRE, run_id, [member, now_ms(), self.lease_ms])]

    async def take_step(self, run_id: str, step_id: str, attempt: int) -> TakenStep | None:
        """Begin an attempt, or None when it is not this attempt's turn."""
        reply = await self._run(WF_STEP_START, run_id, [run_id, step_id, attempt, now_ms(), self.lease_ms])
        if text(reply[0]) != "run":
            return None
        return TakenStep(reply[1], text(reply[2]), text(reply[3]), text(reply[4]) == "1")

    async def renew_step(self, run_id: str, step_id: str, attempt: int) -> bool:
        """Keep a running attempt's lease; False when it is no longer wanted."""
        return bool(await self._run(WF_STEP_RENEW, run_id, [run_id, step_id, attempt, now_ms(), self.lease_ms]))

    async def finish_step(self, run_id: str, step_id: str, attempt: int, *, result: bytes | None = None,
                          error: str = "", retry_ms: int = -1, error_kind: str = "failed") -> bool:
        """End an attempt with its result, or its error (tried again after ``retry_ms`` when >= 0)."""
        value: bytes | str = result if result is not None else error
        return bool(await self._run(WF_STEP_FINISH, run_id, [
            run_id, step_id, attempt, now_ms(), "1" if result is not None else "0", value, retry_ms, error_kind,
            self.retention_s]))

    # -- reads -----------------------------------------------------------------------------

    async def view(self, run_id: str, user_id: str | None = None) -> RunView:
        """A run with its steps (NotFound when missing or, with ``user_id``, not theirs)."""
        fields, steps, results = await self.snapshot(run_id)
        if not fields or (user_id is not None and fields.get("userId") != user_id):
            raise NotFound(f"no workflow run {run_id}")
        with redis_errors():
            kept = await self.redis.llen(keys.workflow(run_id, "events"))
        for step in steps.values():
            if step.id in results:
                step.result = msgspec.Raw(results[step.id])
        return _run_view(fields, sorted(steps.values(), key=lambda s: s.seq), kept)

    async def runs(self, user_id: str | None, *, num_items: int = 20, cursor: str | None = None,
                   ) -> tuple[int, Page[RunView]]:
        """The user's runs (every run with None), newest first, without their steps; and the list's
        version."""
        with redis_errors():
            if user_id is not None:
                version = int(await self.redis.get(keys.user_workflows_version(user_id)) or 0)
                ids: list[Any] = await self.redis.zrevrangebyscore(
                    keys.user_workflows(user_id), score_bound(cursor), "-inf", start=0, num=num_items + 1,
                    withscores=True)
            else:  # every partition's runs
                version = sum(int(v or 0) for v in await partitions.each(
                    self.redis, keys.WORKFLOW_RUNS_VERSION, lambda pipe, key: pipe.get(key)))
                ids = await partitions.top(self.redis, keys.WORKFLOW_RUNS, num_items + 1, below=score_bound(cursor))
            async with self.redis.pipeline(transaction=False) as pipe:
                for run_id, _ in ids[:num_items]:
                    pipe.hgetall(keys.workflow(text(run_id), "run"))
                found = await pipe.execute()
        page = [_run_view({text(k): text(v) for k, v in raw.items()}, [], 0) for raw in found if raw]
        more = len(ids) > num_items
        return version, Page(page=page, continue_cursor=str(int(ids[num_items - 1][1])) if more else "",
                             is_done=not more)

    async def check_owner(self, run_id: str, user_id: str | None) -> None:
        """NotFound unless the run exists and, with ``user_id``, is theirs (one field read)."""
        with redis_errors():
            owner = await self.redis.hget(keys.workflow(run_id, "run"), "userId")
        if owner is None or (user_id is not None and text(owner) != user_id):
            raise NotFound(f"no workflow run {run_id}")

    async def version(self, run_id: str) -> int:
        with redis_errors():
            return int(await self.redis.hget(keys.workflow(run_id, "run"), "version") or 0)

    async def forget(self, run_id: str, user_id: str) -> None:
        """Delete an ended run's record and index entries now (an erasure of its user's data)."""
        with redis_errors():
            await self.redis.zrem(keys.user_workflows(user_id), run_id)  # (another slot: first)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.execute_command("UNLINK", *(keys.workflow(run_id, part) for part in keys.WORKFLOW_PARTS))
                pipe.zrem(keys.part_of(keys.WORKFLOW_RUNS, run_id), run_id)
                pipe.hdel(keys.part_of(keys.WORKFLOW_OWNERS, run_id), run_id)
                pipe.incr(keys.part_of(keys.WORKFLOW_RUNS_VERSION, run_id))
                await pipe.execute()

    async def trim(self, older_than_ms: int, batch: int = 500) -> int:
        """Forget index entries of runs whose records expired; returns how many."""
        dropped = 0
        with redis_errors():
            for raw in await partitions.due(self._scripts, keys.WORKFLOW_RUNS, older_than_ms, batch):
                run_id = text(raw)
                if await self.redis.exists(keys.workflow(run_id, "run")):
                    continue
                owners = keys.part_of(keys.WORKFLOW_OWNERS, run_id)
                owner = await self.redis.hget(owners, run_id)
                if owner is not None:  # first the user's list (another slot), then the run's index
                    await self.redis.zrem(keys.user_workflows(text(owner)), run_id)
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zrem(keys.part_of(keys.WORKFLOW_RUNS, run_id), run_id)
                    pipe.hdel(owners, run_id)
                    await pipe.execute()
                dropped += 1
        return dropped


_step_decoder = msgspec.json.Decoder(StepView)


def _run_view(fields: dict[str, str], steps: list[StepView], kept: int) -> RunView:
    def number(name: str) -> int | None:
        value = fields.get(name)
        return int(value) if value else None

    return RunView(
        run_id=fields.get("runId", ""), name=fields.get("name", ""), user_id=fields.get("userId", ""),
        status=fields.get("status", ""), version=number("version") or 0, created_at=number("createdAt") or 0,
        updated_at=number("updatedAt") or 0, finished_at=number("finishedAt"),
        args=msgspec.Raw(fields.get("args", "null").encode()),
        result=msgspec.Raw(fields["result"].encode()) if fields.get("result") else None,
        error=msgspec.json.decode(fields["error"]) if fields.get("error") else None,
        parent=fields.get("parent") or None, parent_step=fields.get("parentStep") or None,
        events_kept=kept, steps=steps)


def on_complete_input(wf: Workflow) -> str:
    """The input of a run's onComplete step ("" when the workflow has no handler)."""
    if wf.on_complete is None:
        return ""
    return msgspec.json.encode({"op": "on_complete", "retry": wf.retry,
                                "timeoutS": wf.step_timeout_s}).decode()


async def _on_run(redis: Client, scripts: Scripts, script: Script, run_id: str, args: Sequence[Any]) -> Any:
    """Run a workflow script on ``run_id`` and do at once the follow-ups it recorded (those that
    fail are left to the outbox sweeper); the script's result."""
    with redis_errors():
        result, follows = await scripts.run(script, keys.workflow_keys(run_id), args)
    await outbox.Outbox(redis, scripts).follow_all(keys.outbox(run_id), follows)
    return result


@outbox.handler("wf.user")
async def _tell_user(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    user_id, run_id, created_at = args
    with redis_errors():
        await scripts.run(WF_USER, [keys.user_workflows(user_id), keys.user_workflows_version(user_id)],
                          [run_id, created_at, keys.user_workflows_channel(user_id)])
        await redis.spublish(keys.WORKFLOW_RUNS_CHANNEL, run_id)  # (the playground's list of every run)


@outbox.handler("wf.pool")
async def _pool(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    op, name, run_id, max_running = args
    pool = [keys.workflow_pool(name, part) for part in ("running", "queue", "released")] + [keys.outbox(name)]
    with redis_errors():
        if op == "take":
            reply = await scripts.run(WF_POOL_TAKE, pool, [run_id, max_running, now_ms()])
            grants = reply[1:]
        else:
            grants = await scripts.run(WF_POOL_RELEASE, pool, [run_id, max_running, now_ms(), RELEASED_MS])
    await outbox.Outbox(redis, scripts).follow_all(keys.outbox(name), grants)


@outbox.handler("wf.grant")
async def _grant(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    (run_id,) = args
    await _on_run(redis, scripts, WF_GRANT, run_id, [run_id, now_ms()])


@outbox.handler("wf.start")
async def _start_child(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    run_id, name, user_id, raw_args, max_running, parent, parent_step, on_complete, limited = args
    await _on_run(redis, scripts, WF_START, run_id, [run_id, name, user_id, raw_args, now_ms(), max_running,
                                                     on_complete, limited, parent, parent_step])


@outbox.handler("wf.cancel")
async def _cancel_child(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    run_id, reason, retention_s = args
    await _on_run(redis, scripts, WF_CANCEL, run_id, [run_id, now_ms(), retention_s, reason, "1"])


@outbox.handler("wf.child")
async def _child_done(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    parent, step_id, status, result, error, _ = args
    await _on_run(redis, scripts, WF_CHILD_DONE, parent, [parent, step_id, status, result, error, now_ms()])
