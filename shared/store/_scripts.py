"""The Lua scripts of the store, loaded once per client."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from threadline.shared.files.refs import LUA_PRELUDE as FILES_PRELUDE
from threadline.shared.limits import LUA_PRELUDE as LIMITS_PRELUDE
from threadline.shared.memory.ops import LUA_PRELUDE as OPS_PRELUDE
from threadline.shared.store.guard import GUARD_HEAD, GUARD_TAIL, Record
from threadline.shared.store.score import LUA_PRELUDE as SCORE_PRELUDE
from threadline.shared.store.stream_records import LUA_PRELUDE as DELTA_PRELUDE
from threadline.shared.workflows.lua import LUA_PRELUDE as WORKFLOW_PRELUDE

_DIR = Path(__file__).parent / "lua"
_SOURCES = {p.stem: p.read_text() for p in _DIR.glob("*.lua")}
_PRELUDE = (SCORE_PRELUDE + OPS_PRELUDE + DELTA_PRELUDE + FILES_PRELUDE  # what every script may use (formats
            + LIMITS_PRELUDE + WORKFLOW_PRELUDE)  # defined in Python)


Arg = bytes | str | int | float  # what a script's ARGV holds


class Scripts:
    """The scripts of ``lua/`` by name (the file's stem), run with EVALSHA (loaded on first use).

    Every script starts with the prelude: the formats defined in Python that
    scripts write too (the message score, index ops, delta notices).
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(_PRELUDE + src) for name, src in _SOURCES.items()
        }
        self._guarded: dict[str, AsyncScript] = {
            name: redis.register_script(_PRELUDE + GUARD_HEAD + src + GUARD_TAIL) for name, src in _SOURCES.items()
        }

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Arg],
                  record: Record | None = None) -> Any:
        """Run script ``name``; with a ``record``, at most once for it (see shared.store.guard)."""
        if record is None:
            return await self._scripts[name](keys=list(keys), args=list(args))
        return await self._guarded[name](keys=[record.key, *keys], args=[record.ttl_s, *args])

    async def queue(self, pipe: Pipeline, name: str, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Add a run of script ``name`` to ``pipe`` (its result comes with the pipeline's)."""
        await self._scripts[name](keys=list(keys), args=list(args), client=pipe)
