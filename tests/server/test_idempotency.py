"""run_once: the first outcome of a request is kept and replayed; transient failures are not kept;
two users' requests with the same id never share a record."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from threadline.server.context import Context
from threadline.server.idempotency import run_once
from threadline.server.mutations import Outcome
from threadline.shared.errors import BadRequest, Unavailable

pytestmark = pytest.mark.anyio


class Counted:
    def __init__(self, result: Outcome | Exception) -> None:
        self.result = result
        self.calls = 0
        self.guards: list[object] = []

    async def __call__(self, ctx: Context) -> Outcome:
        self.calls += 1
        self.guards.append(ctx.guard)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_an_outcome_is_replayed_without_running_again(as_user: Callable[[str], Context]) -> None:
    ctx = as_user("alice")
    op = Counted(Outcome({"n": 1}, 7, ["ch"]))
    first, replay = await run_once(ctx.store.redis, ctx, ("ws", "c1", "r1"), 60, op)
    assert not replay and first.ok and bytes(first.value) == b'{"n":1}' and first.version == 7
    again, replay = await run_once(ctx.store.redis, ctx, ("ws", "c1", "r1"), 60, op)
    assert replay and again == first and op.calls == 1
    assert op.guards[0] is not None  # the writes it makes are guarded by the request


async def test_a_refusal_is_kept_but_a_transient_failure_runs_again(as_user: Callable[[str], Context]) -> None:
    ctx = as_user("alice")
    refused = Counted(BadRequest("no"))
    for _ in range(2):
        out, _ = await run_once(ctx.store.redis, ctx, ("http", "k1"), 60, refused)
        assert not out.ok and out.error == {"code": "bad_request", "message": "no"}
    assert refused.calls == 1
    down = Counted(Unavailable("later"))
    for _ in range(2):
        await run_once(ctx.store.redis, ctx, ("http", "k2"), 60, down)
    assert down.calls == 2


async def test_the_same_request_id_of_two_users_runs_twice(as_user: Callable[[str], Context]) -> None:
    op = Counted(Outcome(None, 1, []))
    for user in ("alice", "bob"):
        ctx = as_user(user)
        _, replay = await run_once(ctx.store.redis, ctx, ("ws", "c1", "r1"), 60, op)
        assert not replay
    assert op.calls == 2
