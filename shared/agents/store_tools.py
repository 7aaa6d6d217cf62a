"""Tools over the cross-thread store (shared.items): an agent remembers small facts under keys,
recalls them by meaning from any thread, and forgets them.

``store_tools()`` gives the three; what they reach is the app's choice: the user's namespace by
default, ``namespace="team:ops"`` or ``"global"`` for shared ones, and ``search=[...]`` to recall
from several.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from threadline.shared.agents import Tool, ToolContext
from threadline.shared.documents.store import agent_namespaces
from threadline.shared.errors import Unavailable
from threadline.shared.items.store import MAX_KEY_CHARS, MAX_TEXT_CHARS
from threadline.shared.rag.items import search_items


class Remember(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_CHARS,
                                     description="where it is kept, a short path like preferences/food")]
    value: Annotated[Any, msgspec.Meta(description="the fact: a string, or a small JSON object")]
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS,
                                      description="how to find it by meaning (default: key and value)")] | None = None


class Recall(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=1000, description="what you want to recall")]
    limit: Annotated[int, msgspec.Meta(ge=1, le=20, description="how many items (default 5)")] | None = None


class Forget(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_CHARS, description="the item's key")]


def _runtime(ctx: ToolContext) -> Any:
    if ctx.runtime is None:
        raise Unavailable("the store is not reachable here")
    return ctx.runtime


def store_tools(namespace: str = "user", *, search: list[str] | None = None, limit: int = 5) -> list[Tool]:
    """``remember``, ``recall`` and ``forget`` over the store: writes go to ``namespace``; recall
    searches ``search`` (default: that namespace)."""
    reads = search or [namespace]
    agent_namespaces([namespace, *reads], "")  # a bad name fails at definition

    async def remember(ctx: ToolContext, args: Remember) -> dict[str, object]:
        [target] = agent_namespaces([namespace], ctx.user_id)
        _, item = await _runtime(ctx).store.items.put(target, args.key, args.value, text=args.text,
                                                      by=f"agent:{ctx.agent.name}")
        return {"key": item.key, "version": item.version}

    async def recall(ctx: ToolContext, args: Recall) -> list[dict[str, object]]:
        rt = _runtime(ctx)
        found = await search_items(rt.store, rt.memory, agent_namespaces(reads, ctx.user_id), args.query,
                                   limit=args.limit or limit, bill_to=ctx.user_id)
        return [{"key": r.item.key, "value": r.item.value, "namespace": r.item.namespace,
                 "updatedAt": r.item.updated_at} for r in found]

    async def forget(ctx: ToolContext, args: Forget) -> dict[str, object]:
        [target] = agent_namespaces([namespace], ctx.user_id)
        _, deleted = await _runtime(ctx).store.items.delete(target, args.key)
        return {"deleted": deleted}

    return [
        Tool("remember", "Keep a fact for later conversations (a preference, a name, a decision) under a key; "
                         "the same key again replaces it.", Remember, remember),
        Tool("recall", "Find facts kept in earlier conversations by what they are about.", Recall, recall),
        Tool("forget", "Remove a kept fact that is no longer true.", Forget, forget),
    ]
