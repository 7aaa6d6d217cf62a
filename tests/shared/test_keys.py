"""Keys: one thread's keys share a Cluster slot, deleting a thread names every per-thread key,
and what the scripts derive from a prefix matches the key functions."""

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
    assert {slot_tag(k) for k in named} == {"t:t123"}


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
    assert slot_tag(keys.outcome("u1", "d")) == "u:u1"
    assert slot_tag(keys.write_record("d", user_id="u1")) == "u:u1"


def test_scores_order_by_order_then_step() -> None:
    assert score(2, STEP_SPAN - 1) < score(3) < score(3, 1)
    assert order_of(score(7, 5)) == (7, 5)
    assert int(after_order(4)) == score(5)


def test_job_ids_and_keys_are_rqs() -> None:
    assert jobs.job_id("m1") == "gen-m1"
    assert jobs.job_key("gen-m1") == "rq:job:gen-m1"
    assert jobs.queue_key(jobs.GENERATION) == "rq:queue:generation"
