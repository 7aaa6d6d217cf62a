"""Lua scripts: each read from its feature's ``lua/`` folder, run with EVALSHA (loaded on first use).

Scripts that run several at a time in one pipeline (a batch of deltas) run as functions
instead (``Scripts.run_all``): a Redis Cluster pipeline refuses EVALSHA (it could not load a
missing script on the right node), but takes FCALL. Each such script is a library of its own, named after its content
(``tl_<name>_<digest>``), loaded on first use on every primary (FUNCTION LOAD goes to all of
them) and again wherever a node answers that it does not know it (a primary added or
restarted since), so versions never mix and no node is missed.

A feature keeps its scripts beside its code (``shared/threads/lua/messages_save.lua``) and
names them once, at import: ``SAVE = lua(__file__, "messages_save")``. A script names the
files it builds on in its first lines, each on a line of its own::

    -- include: score.lua
    -- include: ../../files/lua/refs.lua

and each such line is replaced by that file (its path relative to the script's folder; a
file included twice comes once), so what Redis runs reads top to bottom from files a
reader can open. This module knows no feature: it reads, includes and runs.

A script's first line is its shebang, ``#!lua`` with the flags it needs (``#!lua flags=no-writes``
for a script that only reads): with one, a Redis Cluster refuses a script that touches keys of
a slot other than its declared keys' (unless it says ``allow-cross-slot-keys``), and a read-only
script still runs on a primary out of memory. An included file (a prelude) has none.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.exceptions as rexc
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from threadline.shared.storage.client import Client
from threadline.shared.storage.guard import GUARD_HEAD, GUARD_TAIL, Record

Arg = bytes | str | int | float  # what a script's ARGV holds
_INCLUDE = re.compile(r"^-- include: (\S+)[ \t]*$", re.MULTILINE)
_SHEBANG = re.compile(r"\A#!lua(?: flags=(\S*))?[ \t]*\n")


@dataclass(frozen=True, slots=True)
class Script:
    """One script: its name (the file's stem) and the text Redis runs, includes inlined."""

    name: str
    source: str

    @property
    def function(self) -> str:
        """Its name as a function: the script's name and a digest of its text (a new version is a
        new function, so processes of two versions can run side by side)."""
        return f"tl_{self.name}_{self.sha[:12]}"

    @property
    def sha(self) -> str:
        """Its SHA-1, as EVALSHA names it."""
        return hashlib.sha1(self.source.encode()).hexdigest()

    @property
    def shebang(self) -> str:
        """Its first line if it is a shebang (``#!lua flags=...``, with its newline), else ""."""
        found = _SHEBANG.match(self.source)
        return found.group(0) if found else ""

    @property
    def flags(self) -> tuple[str, ...]:
        """The flags its shebang gives (``no-writes``, ``allow-cross-slot-keys``...)."""
        found = _SHEBANG.match(self.source)
        return tuple(f for f in (found.group(1) or "").split(",") if f) if found else ()

    @property
    def body(self) -> str:
        """Its text after the shebang."""
        return self.source[len(self.shebang):]

    @property
    def library(self) -> str:
        """Its text as a function library of its own (FUNCTION LOAD): KEYS and ARGV are the
        function's arguments, so the script's text runs unchanged, with the shebang's flags."""
        flags = ", ".join(f"'{flag}'" for flag in self.flags)
        return (f"#!lua name={self.function}\n"
                f"redis.register_function{{function_name='{self.function}', flags={{{flags}}}, "
                f"callback=function(KEYS, ARGV)\n{self.body}\nend}}\n")


def lua(module_file: str, name: str) -> Script:
    """Script ``name`` of the ``lua/`` folder beside ``module_file`` (a feature module's __file__)."""
    return read(Path(module_file).parent / "lua" / f"{name}.lua")


def read(path: Path) -> Script:
    """The script at ``path`` with its includes inlined; FileNotFoundError naming a missing one."""
    return Script(path.stem, _inline(path.resolve(), set()))


def _inline(path: Path, seen: set[Path], text: str | None = None) -> str:
    seen.add(path)

    def include(match: re.Match[str]) -> str:
        target = (path.parent / match.group(1)).resolve()
        if not target.is_file():
            raise FileNotFoundError(f"{path}: includes {match.group(1)}, which does not exist")
        included = target.read_text()
        if included.startswith("#!"):
            raise ValueError(f"{path}: includes {match.group(1)}, a script (a prelude has no shebang)")
        return "" if target in seen else _inline(target, seen, included)

    return _INCLUDE.sub(include, path.read_text() if text is None else text)


class Scripts:
    """Runs scripts over one Redis client; with a ``record``, at most once for it (see
    shared.storage.guard)."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis
        self._plain: dict[Script, AsyncScript] = {}
        self._guarded: dict[Script, AsyncScript] = {}
        self._loaded: set[Script] = set()  # as functions

    @property
    def redis(self) -> Client:
        return self._redis

    def _registered(self, script: Script, guarded: bool) -> AsyncScript:
        table = self._guarded if guarded else self._plain
        found = table.get(script)
        if found is None:
            if guarded and "no-writes" in script.flags:
                raise ValueError(f"{script.name} writes nothing: it has no guarded variant")
            source = script.shebang + GUARD_HEAD + script.body + GUARD_TAIL if guarded else script.source
            found = table[script] = self._redis.register_script(source)
        return found

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg],
                  record: Record | None = None) -> Any:
        """Run ``script``; with a ``record``, its guarded variant (the record is its first key)."""
        if record is None:
            return await self._registered(script, False)(keys=list(keys), args=list(args))
        return await self._registered(script, True)(keys=[record.key, *keys], args=[record.ttl_s, *args])

    async def run_all(self, calls: Sequence[tuple[Script, Sequence[str], Sequence[Arg]]]) -> list[Any]:
        """Run every (script, keys, args) in one pipeline, each atomic on its own (not a transaction:
        redis-py's cluster transactions cannot take FCALL), as functions; returns each result, an
        exception in place of a failed one.

        A node that does not know a function answers so without running it: the libraries are
        loaded again and what was refused runs again, in order.
        """
        await self._load({script for script, _, _ in calls if script not in self._loaded})
        results = await self._pipelined(calls)
        refused = [i for i, result in enumerate(results) if _unknown_function(result)]
        if refused:
            await self._load({calls[i][0] for i in refused})
            for i, result in zip(refused, await self._pipelined([calls[i] for i in refused]), strict=True):
                results[i] = result
        return results

    async def _pipelined(self, calls: Sequence[tuple[Script, Sequence[str], Sequence[Arg]]]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                pipe.fcall(script.function, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def run_on(self, node: Any, script: Script, args: Sequence[Arg]) -> Any:
        """Run a walker of partitions (a script that names the keys of the partitions it is given,
        declaring none) on one primary of a Redis Cluster (a ``ClusterNode``): it may touch keys of
        every slot that node serves; its source says so (``#!lua flags=allow-cross-slot-keys``)."""
        assert isinstance(self._redis, RedisCluster)
        try:
            return await self._redis.execute_command("EVALSHA", script.sha, 0, *args, target_nodes=node)
        except rexc.NoScriptError:
            return await self._redis.execute_command("EVAL", script.source, 0, *args, target_nodes=node)

    async def _load(self, scripts: set[Script]) -> None:
        """Load each script's library on every primary (again, if it is there already)."""
        for script in scripts:
            await self._redis.function_load(script.library, replace=True)
            self._loaded.add(script)


def _unknown_function(result: object) -> bool:
    return isinstance(result, rexc.ResponseError) and "function not found" in str(result).lower()
