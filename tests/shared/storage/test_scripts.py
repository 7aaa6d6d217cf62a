"""Every Lua script reads from files beside it, and the formats Lua shares with Python agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from threadline.shared.indexing.ops import IndexOp, decode_op
from threadline.shared.score import score
from threadline.shared.storage.guard import Record
from threadline.shared.storage.scripts import Script, Scripts, read
from threadline.shared.streams.records import DeltaNotice, decode_notice
from threadline.shared.threads import Store

pytestmark = pytest.mark.anyio
SHARED = Path(__file__).resolve().parents[3] / "shared"
LUA_FILES = sorted(SHARED.rglob("*.lua"))
INCLUDED = {(p.parent / m).resolve() for p in LUA_FILES
            for m in re.findall(r"^-- include: (\S+)", p.read_text(), re.MULTILINE)}


def test_every_include_resolves_and_every_script_is_run_by_its_feature() -> None:
    named = {m for p in SHARED.rglob("*.py") for m in re.findall(r'\blua\(__file__, "([a-z_]+)"\)', p.read_text())}
    for path in LUA_FILES:
        script = read(path)
        assert "-- include:" not in script.source, path
        if path.resolve() in INCLUDED:  # a prelude: functions other scripts include
            assert path.stem not in named, f"{path} is both a prelude and a script"
        else:
            assert path.stem in named, f"{path.relative_to(SHARED)} is run by no module beside it"
            assert (path.parent.parent / "lua" / path.name).exists()


# what a script may call and still say it writes nothing (no-writes)
READS = {"EXISTS", "GET", "HEXISTS", "HGET", "HGETALL", "HKEYS", "HLEN", "HMGET", "LLEN", "LPOS", "LRANGE",
         "SCARD", "SISMEMBER", "SMEMBERS", "TIME", "ZCARD", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
         "ZSCORE"}


def test_every_script_says_how_it_runs_and_a_reader_says_it_writes_nothing() -> None:
    """A script's shebang makes a Redis Cluster refuse its access to a slot other than its declared
    keys'; one that only reads says so (no-writes: it then runs on a primary out of memory, and
    the server refuses a write it would attempt)."""
    readers = []
    for path in LUA_FILES:
        script = read(path)
        if path.resolve() in INCLUDED:
            assert not script.shebang, f"{path}: a prelude has no shebang"
            continue
        assert script.shebang, f"{path.relative_to(SHARED)} does not begin with #!lua"
        calls = {c.upper() for c in re.findall(r"redis\.p?call\(\s*'(\w+)'", script.source)}
        assert not re.search(r"redis\.p?call\(\s*[^'\s]", script.source), f"{path}: a command named at run time"
        assert ("no-writes" in script.flags) == (calls <= READS), f"{path}: calls {sorted(calls)}, flags {script.flags}"
        readers += ["no-writes" in script.flags]
    assert any(readers) and not all(readers)


async def test_shebangs_carry_over_to_functions_and_guarded_variants(store: Store) -> None:
    reader = Script("test_flagged", "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])")
    assert reader.flags == ("no-writes",) and reader.body == "return redis.call('GET', KEYS[1])"
    assert "flags={'no-writes'}" in reader.library and "#!lua flags" not in reader.library
    with pytest.raises(ValueError, match="no guarded variant"):
        await store.scripts.run(reader, ["{test}:x"], [], record=Record("{test}:record", 60))


async def test_a_reader_that_writes_is_refused(store: Store) -> None:
    liar = Script("test_liar", "#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], '1')")
    with pytest.raises(redis.ResponseError, match=r"(?i)write commands are not allowed"):
        await store.scripts.run(liar, ["test:x"], [])
    [as_function] = await Scripts(store.redis).run_all([(liar, ["test:x"], [])])
    assert isinstance(as_function, redis.ResponseError) and "not allowed" in str(as_function).lower()
    assert await store.redis.exists("test:x") == 0


def test_a_prelude_with_a_shebang_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.lua").write_text("#!lua\nlocal A = 1\n")
    (tmp_path / "s.lua").write_text("#!lua\n-- include: a.lua\nreturn A\n")
    with pytest.raises(ValueError, match="a prelude has no shebang"):
        read(tmp_path / "s.lua")
    (tmp_path / "a.lua").write_text("local A = 1\n")
    assert read(tmp_path / "s.lua").shebang == "#!lua\n"


def test_a_missing_include_fails_at_import(tmp_path: Path) -> None:
    (tmp_path / "broken.lua").write_text("-- include: nowhere.lua\nreturn 1\n")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.lua"):
        read(tmp_path / "broken.lua")


def test_a_file_included_twice_comes_once(tmp_path: Path) -> None:
    (tmp_path / "a.lua").write_text("local A = 1\n")
    (tmp_path / "b.lua").write_text("-- include: a.lua\nlocal B = A\n")
    (tmp_path / "s.lua").write_text("-- include: a.lua\n-- include: b.lua\nreturn B\n")
    assert read(tmp_path / "s.lua").source.count("local A = 1") == 1


async def _eval(store: Store, prelude: str, body: str) -> object:
    source = read(SHARED / prelude).source + "\n" + body
    return await store.scripts.run(Script("probe-" + prelude.replace("/", "-"), source), [], [])


async def test_lua_scores_are_python_scores(store: Store) -> None:
    got = await _eval(store, "lua/score.lua", "return {score_of(0, 0), score_of(3, 5), score_of(123456, 1048575)}")
    assert [int(v) for v in got] == [score(0, 0), score(3, 5), score(123456, 1048575)]  # type: ignore[attr-defined]


async def test_lua_index_ops_and_delta_notices_decode_in_python(store: Store) -> None:
    op = await _eval(store, "indexing/lua/index_op.lua", "return index_op('embed_message', 'm1')")
    assert decode_op(op) == IndexOp("embed_message", "m1")  # type: ignore[arg-type]
    notice = await _eval(store, "streams/lua/delta_notice.lua", "return delta_notice('s1', 7, '[1]')")
    assert decode_notice(notice) == DeltaNotice("s1", 7, "[1]")  # type: ignore[arg-type]


COUNTER = Script("test_counter", "return {KEYS[1], redis.call('INCRBY', KEYS[1], ARGV[1])}")
READER = Script("test_reader", "return redis.call('GET', KEYS[1])")


async def test_scripts_run_together_as_functions_even_after_a_node_forgot_them(store: Store) -> None:
    """A pipeline of scripts runs them as functions; a node that lost its functions (restarted, or
    added since) gets them again and what it refused runs once, in order."""
    scripts = Scripts(store.redis)
    calls = [(COUNTER, ["test:a"], [1]), (COUNTER, ["test:b"], [10]), (COUNTER, ["test:a"], [2])]
    assert await scripts.run_all(calls) == [[b"test:a", 1], [b"test:b", 10], [b"test:a", 3]]
    await store.redis.function_flush()
    assert await scripts.run_all(calls) == [[b"test:a", 4], [b"test:b", 20], [b"test:a", 6]]
    assert COUNTER.function != Script("test_counter", COUNTER.source + " ").function  # a new text, a new version


async def test_a_failed_script_fails_alone(store: Store) -> None:
    scripts = Scripts(store.redis)
    broken = Script("test_broken", "return redis.error_reply('CONFLICT no')")
    first, second = await scripts.run_all([(broken, ["test:x"], []), (READER, ["test:x"], [])])
    assert isinstance(first, redis.ResponseError) and "CONFLICT" in str(first) and second is None
