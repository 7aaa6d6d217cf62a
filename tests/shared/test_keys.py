"""Keys: one thread's keys share a Cluster slot, deleting a thread names every per-thread key,
what the scripts derive from a prefix matches the key functions, and the partitions spread."""

from __future__ import annotations

import re

from threadline.shared import jobs, keys
from threadline.shared.score import STEP_SPAN, after_order, order_of, score


def slot_tag(key: str) -> str:
    m = re.search(r"\{([^}]*)\}", key)
    assert m, key
    return m.group(1)


def test_every_key_of_a_thread_is_in_the_threads_slot() -> None:
    tid = "t123"
    named = [*keys.thread_keys(tid), *keys.stream_keys(tid, "t123.s1"), keys.thread_channel(tid),
             keys.delta_channel(tid), keys.write_record("d", thread_id=tid)]
    assert {slot_tag(k) for k in named} == {keys.partition_tag(keys.partition(tid))[1:-1]}


def test_thread_keys_cover_every_per_thread_key_function() -> None:
    tid = "t9"
    fixed = set(keys.thread_keys(tid))
    for fn in (keys.thread, keys.messages, keys.message_index, keys.message_index_no_tools, keys.thread_streams,
               keys.generation_lock, keys.generation_queue, keys.generation_retries, keys.snippets,
               keys.snippet_index):
        assert fn(tid) in fixed, fn.__name__


def test_the_stream_key_parts_rebuild_the_stream_keys() -> None:
    prefix, suffix = keys.stream_key_parts("t1")
    assert prefix + "t1.s2" == keys.stream("t1", "t1.s2")
    assert prefix + "t1.s2" + suffix == keys.stream_text("t1", "t1.s2")


def test_request_digests_cannot_collide_by_moving_separators() -> None:
    assert keys.request_digest("ws", "a:b", "c") != keys.request_digest("ws", "a", "b:c")
    assert keys.request_digest("ws", "ab", "") != keys.request_digest("ws", "a", "b")


def test_user_and_thread_records_live_in_their_own_slots() -> None:
    tag = keys.partition_tag(keys.partition("u1"))[1:-1]
    assert slot_tag(keys.outcome("u1", "d")) == tag
    assert keys.user_threads("u1") == f"tl:{{{tag}}}:u:u1:threads"


def test_ids_the_app_chooses_cannot_name_another_entitys_keys() -> None:
    """User ids and namespaces are the app's: one ending like another's key suffix stays apart."""
    for a, b in (("bob", "bob:usage"), ("bob", "bob%3Ausage"), ("x", "x:threads")):
        names_a = {keys.usage_state(a), keys.usage_totals(a, "2026-12"), keys.user_threads(a), keys.user_state(a),
                   keys.user_workflows_version(a)}
        names_b = {keys.usage_state(b), keys.usage_totals(b, "2026-12"), keys.user_threads(b), keys.user_state(b),
                   keys.user_workflows_version(b)}
        assert not names_a & names_b, (a, b)
    from redis.crc import (
        key_slot,  # braces in an id never make a hash tag: the partition's comes first
    )

    assert key_slot(keys.user_threads("{a}").encode()) == key_slot(keys.partition_tag(keys.partition("{a}")).encode())


def test_partitions_spread_evenly_over_three_primaries() -> None:
    """1,024 tags over a 3-primary cluster's slot ranges: each primary holds about a third."""
    from redis.crc import key_slot

    share = [0, 0, 0]
    for p in range(keys.PARTITIONS):
        slot = key_slot(f"tl:{keys.partition_tag(p)}:x".encode())
        share[0 if slot < 5461 else 1 if slot < 10923 else 2] += 1
    assert min(share) > keys.PARTITIONS // 3 * 0.9
    per_partition = [0] * keys.PARTITIONS
    for i in range(100_000):
        per_partition[keys.partition(f"t{i:06d}")] += 1
    assert max(per_partition) < 150 and min(per_partition) > 50  # 97.7 per partition on average


def test_scores_order_by_order_then_step() -> None:
    assert score(2, STEP_SPAN - 1) < score(3) < score(3, 1)
    assert order_of(score(7, 5)) == (7, 5)
    assert int(after_order(4)) == score(5)


def test_job_ids_and_keys_are_rqs() -> None:
    assert jobs.job_id("m1") == "gen-m1"
    assert jobs.job_key("gen-m1") == "rq:job:gen-m1"
    assert jobs.queue_key(jobs.GENERATION) == "rq:queue:generation"
