"""The one path a mutation takes, whatever carried it (a WebSocket frame, an HTTP request, the AI
SDK transport, the playground): find it, parse its arguments, run it at most once for its request
id (server.idempotency), count it, and answer with an outcome, never an exception."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from threadline.server import approvals  # noqa: F401  (registers tools.approve)
from threadline.server.context import Context
from threadline.server.idempotency import StoredOutcome, outcome_of, run_once
from threadline.server.mutations import MUTATIONS, Outcome
from threadline.shared import metrics
from threadline.shared.errors import BadRequest, ChatError, error_from, from_validation


def parse_args(name: str, raw: bytes | dict[str, Any]) -> Any:
    """The arguments of mutation ``name`` from JSON bytes (a frame) or decoded JSON (a body);
    BadRequest naming the mutation or the field at fault."""
    mutation = MUTATIONS.get(name)
    if mutation is None:
        raise BadRequest(f"unknown mutation {name!r}")
    try:
        if isinstance(raw, bytes):
            return msgspec.json.decode(raw, type=mutation.args_type)
        return msgspec.convert(raw, mutation.args_type)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise from_validation(exc) from exc


async def run_mutation(ctx: Context, name: str, args: Any, request: tuple[str, ...] | None,
                       run: Callable[[Context], Awaitable[Outcome]] | None = None) -> StoredOutcome:
    """Run mutation ``name`` for ``ctx``'s caller; its outcome (an error is an outcome too).

    ``args``: JSON bytes or decoded JSON, parsed here, or arguments already parsed (a struct).
    ``request`` names the request (transport, client, id) so that a resend replays the first
    outcome; None runs it unguarded (an HTTP call without an Idempotency-Key). ``run``: the
    mutation's work when it takes more than its arguments (an uploaded file's bytes).
    """
    known = name in MUTATIONS
    try:
        parsed = parse_args(name, args) if isinstance(args, bytes | dict) else args
        work = run or (lambda c: MUTATIONS[name].handler(c, parsed))
        if request is None or (known and MUTATIONS[name].repeatable):
            try:
                stored = outcome_of(await work(ctx))
            except ChatError as exc:
                stored = outcome_of(exc)
        else:
            stored, _ = await run_once(ctx.services.redis, ctx, request, ctx.services.settings.idempotency_ttl_s,
                                       work)
    except ChatError as exc:  # unknown, malformed, or the store away before it ran
        stored = outcome_of(exc)
    if known:  # an unknown name is the caller's typo: not a label of its own
        metrics.mutations.labels(name, "ok" if stored.ok else str((stored.error or {}).get("code", "internal"))).inc()
    return stored


def value_of(stored: StoredOutcome) -> Any:
    """The value of a successful outcome as JSON values; the ChatError of a failed one, raised."""
    if not stored.ok:
        raise error_of(stored)
    return msgspec.json.decode(bytes(stored.value))


def error_of(stored: StoredOutcome) -> ChatError:
    """The error of a failed outcome (a replayed one too) as the ChatError it stands for."""
    return error_from(stored.error or {"code": "internal", "message": ""})
