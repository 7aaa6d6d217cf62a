"""An audit of the hash slots each Lua script call names (Redis Cluster runs an atomic call in one
slot): every script run in the test process is recorded with how many distinct slots its declared
keys fall in; a script that named several fails the run (``violations``). ``pytest --slots-report
PATH`` writes the table.

It sees the declared keys only: a script that builds key names inside Lua (the workflow scripts,
the partition walkers of the index ops) shows as none here, and only the calls of the test process
itself are seen.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.crc import key_slot

from threadline.shared.storage.guard import Record
from threadline.shared.storage.scripts import Script, Scripts

_seen: dict[str, set[int]] = defaultdict(set)  # script -> the numbers of distinct slots of its calls


def _note(script: Script, keys: Sequence[str]) -> None:
    _seen[script.name].add(len({key_slot(k.encode()) for k in keys}))


def install() -> None:
    """Wrap Scripts.run and Scripts.run_all of this process to record each call's slots."""
    run, run_all = Scripts.run, Scripts.run_all

    async def recorded_run(self: Scripts, script: Script, keys: Sequence[str], args: Sequence[Any],
                           record: Record | None = None) -> Any:
        _note(script, [record.key, *keys] if record is not None else keys)
        return await run(self, script, keys, args, record)

    async def recorded_run_all(self: Scripts, calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]) -> Any:
        for script, keys, _ in calls:
            _note(script, keys)
        return await run_all(self, calls)

    Scripts.run = recorded_run  # type: ignore[method-assign]
    Scripts.run_all = recorded_run_all  # type: ignore[method-assign]


def violations() -> list[str]:
    """Scripts one of whose calls named keys of several slots."""
    return sorted(name for name, counts in _seen.items() if max(counts) > 1)


def write(path: Path) -> None:
    """The table: each script, the most slots one of its calls named, and every count seen."""
    rows = {name: {"max": max(counts), "seen": sorted(counts)} for name, counts in sorted(_seen.items())}
    path.write_text(json.dumps(rows, indent=1) + "\n")
    multi = [name for name, row in rows.items() if row["max"] > 1]
    print(f"\nslots: {len(rows)} scripts called, {len(multi)} with calls over more than one slot: "
          f"{', '.join(multi)} (table in {path})")
