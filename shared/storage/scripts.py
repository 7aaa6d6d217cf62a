"""Lua scripts: each read from its feature's ``lua/`` folder, run with EVALSHA (loaded on first use).

A feature keeps its scripts beside its code (``shared/threads/lua/messages_save.lua``) and
names them once, at import: ``SAVE = lua(__file__, "messages_save")``. A script names the
files it builds on in its first lines, each on a line of its own::

    -- include: score.lua
    -- include: ../../files/lua/refs.lua

and each such line is replaced by that file (its path relative to the script's folder; a
file included twice comes once), so what Redis runs reads top to bottom from files a
reader can open. This module knows no feature: it reads, includes and runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from threadline.shared.storage.guard import GUARD_HEAD, GUARD_TAIL, Record

Arg = bytes | str | int | float  # what a script's ARGV holds
_INCLUDE = re.compile(r"^-- include: (\S+)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Script:
    """One script: its name (the file's stem) and the text Redis runs, includes inlined."""

    name: str
    source: str


def lua(module_file: str, name: str) -> Script:
    """Script ``name`` of the ``lua/`` folder beside ``module_file`` (a feature module's __file__)."""
    return read(Path(module_file).parent / "lua" / f"{name}.lua")


def read(path: Path) -> Script:
    """The script at ``path`` with its includes inlined; FileNotFoundError naming a missing one."""
    return Script(path.stem, _inline(path.resolve(), set()))


def _inline(path: Path, seen: set[Path]) -> str:
    seen.add(path)

    def include(match: re.Match[str]) -> str:
        target = (path.parent / match.group(1)).resolve()
        if not target.is_file():
            raise FileNotFoundError(f"{path}: includes {match.group(1)}, which does not exist")
        return "" if target in seen else _inline(target, seen)

    return _INCLUDE.sub(include, path.read_text())


class Scripts:
    """Runs scripts over one Redis client; with a ``record``, at most once for it (see
    shared.storage.guard)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._plain: dict[Script, AsyncScript] = {}
        self._guarded: dict[Script, AsyncScript] = {}

    def _registered(self, script: Script, guarded: bool) -> AsyncScript:
        table = self._guarded if guarded else self._plain
        found = table.get(script)
        if found is None:
            source = GUARD_HEAD + script.source + GUARD_TAIL if guarded else script.source
            found = table[script] = self._redis.register_script(source)
        return found

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg],
                  record: Record | None = None) -> Any:
        """Run ``script``; with a ``record``, its guarded variant (the record is its first key)."""
        if record is None:
            return await self._registered(script, False)(keys=list(keys), args=list(args))
        return await self._registered(script, True)(keys=[record.key, *keys], args=[record.ttl_s, *args])

    async def queue(self, pipe: Pipeline, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Add a run of ``script`` to ``pipe`` (its result comes with the pipeline's)."""
        await self._registered(script, False)(keys=list(keys), args=list(args), client=pipe)
