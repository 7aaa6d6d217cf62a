"""App-wide sets kept one per partition: a reader sees every partition's members, due ones only,
at most as many as asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.shared import keys
from threadline.shared.storage import partitions
from threadline.shared.storage.client import connect
from threadline.shared.storage.scripts import Scripts

pytestmark = pytest.mark.anyio


async def test_members_of_every_partition_are_read_due_ones_only_and_bounded(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        threads = [f"t{i:04d}" for i in range(300)]
        assert len({keys.partition(t) for t in threads}) > 200  # spread over many partitions
        for n, tid in enumerate(threads):
            await redis.zadd(keys.active_streams(tid), {f"{tid}/{tid}.s1": n})
        scripts = Scripts(redis)
        assert len(await partitions.due(scripts, keys.ACTIVE_STREAMS, float("inf"), 1000)) == 300
        due = await partitions.due(scripts, keys.ACTIVE_STREAMS, 149, 1000)
        assert sorted(m.decode().split("/")[0] for m in due) == threads[:150]
        assert len(await partitions.due(scripts, keys.ACTIVE_STREAMS, 1000, 40)) == 40
        assert await partitions.due(scripts, keys.ENDED_STREAMS, 1000, 40) == []
        ranked = await partitions.top(redis, keys.ACTIVE_STREAMS, 3)  # the highest scores over every partition
        assert ranked == [(f"{t}/{t}.s1", float(n)) for n, t in ((299, threads[299]), (298, threads[298]),
                                                                 (297, threads[297]))]
    finally:
        await redis.aclose()


async def test_the_scripts_name_a_partitions_keys_as_python_does(redis_url: str) -> None:
    from threadline.shared.storage.scripts import read

    prelude = read(Path(partitions.__file__).parents[1] / "lua" / "partition.lua").source
    redis = connect(redis_url)
    try:
        for number in (0, 417, keys.PARTITIONS - 1):
            got = await redis.eval(prelude + "return in_partition(ARGV[1], ARGV[2])", 0, str(number), "vec:ops")
            assert got.decode() == keys.in_partition(number, "vec:ops")
    finally:
        await redis.aclose()


async def test_walkers_take_partitions_as_runs_and_read_back_each_number(redis_url: str) -> None:
    """A walk sends runs of partitions ("0-1023", not 1,024 arguments); the script reads every number of
    a run, and those given one by one, and answers each as the number it names."""
    from threadline.shared.storage.scripts import read

    assert partitions.runs(partitions.NUMBERS) == ["0-1023"] == partitions.EVERY
    assert partitions.runs(["3", "4", "5", "9", "11", "12", "2"]) == ["3-5", "9", "11-12", "2"]
    assert partitions.runs([]) == []
    prelude = read(Path(partitions.__file__).parents[1] / "lua" / "partition.lua").source
    redis = connect(redis_url)
    try:
        got = await redis.eval(prelude + "return partitions_from(2)", 0, "x", "3-5", "9", "11-12", "1000-1023")
        assert [int(p) for p in got] == [3, 4, 5, 9, 11, 12, *range(1000, 1024)]
    finally:
        await redis.aclose()


def test_a_partitions_slot_is_that_of_every_key_in_it() -> None:
    """The walks route by each partition's slot, computed once: any key of the partition hashes there."""
    from redis.crc import key_slot

    for p in (0, 1, 417, keys.PARTITIONS - 1):
        for name in ("", "streams:active", "vector:ops:taken:host:1"):
            assert key_slot(keys.in_partition(p, name).encode()) == partitions.SLOTS[p]
    assert len(set(partitions.SLOTS)) == keys.PARTITIONS  # one slot each
