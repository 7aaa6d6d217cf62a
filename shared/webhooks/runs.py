"""The webhook event of a workflow run's end, ``workflow.finished``: every script that ends a run records
it as a follow-up in the run's outbox in the same atomic step (shared/workflows/lua/run.lua,
wf_finish_run); the follow-up reads the run and records its deliveries (none without an endpoint
that takes it)."""

from __future__ import annotations

from typing import Any

import msgspec

from threadline.shared import keys
from threadline.shared.storage import outbox
from threadline.shared.storage.client import Client, redis_errors, text
from threadline.shared.storage.scripts import Scripts
from threadline.shared.webhooks.store import Webhooks

MAX_RESULT = 32 << 10  # bytes of a run's result (JSON) an event carries; a bigger one is left out


@outbox.handler("webhook.workflow")
async def _run_ended(redis: Client, scripts: Scripts, args: list[Any]) -> None:
    run_id, at = str(args[0]), int(args[1])
    hooks = Webhooks(redis, scripts)
    if not await hooks.wants("workflow.finished"):
        return
    with redis_errors():
        run = {text(k): v for k, v in (await redis.hgetall(keys.workflow(run_id, "run"))).items()}
    result, error = run.get("result"), run.get("error")
    data: dict[str, Any] = {
        "runId": run_id, "name": text(run.get("name", b"")), "userId": text(run.get("userId", b"")),
        "status": text(run.get("status", b"")), "createdAt": int(run.get("createdAt", 0)),
        "finishedAt": int(run.get("finishedAt", at)),
        "result": msgspec.json.decode(result) if result and len(result) <= MAX_RESULT else None,
        "resultTruncated": bool(result) and len(result or b"") > MAX_RESULT,
        "error": _json(error)}
    await hooks.emit("workflow.finished", f"evt_run_{run_id}", data, at)


def _json(raw: Any) -> Any:
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return text(raw)
