"""Ids sort by time, and a child id names its thread (and nothing else passes as one)."""

from __future__ import annotations

import time

import pytest

from threadline.shared.errors import BadRequest
from threadline.shared.ids import (
    MESSAGE,
    SNIPPET,
    STREAM,
    new_child_id,
    new_message_id,
    new_session_id,
    new_thread_id,
    thread_of,
    thread_of_message,
)


def test_thread_ids_sort_by_creation_time() -> None:
    first = new_thread_id()
    time.sleep(0.002)
    second = new_thread_id()
    assert first < second and len(first) == len(second) == 20 and first.startswith("t")


def test_every_child_names_its_thread() -> None:
    tid = new_thread_id()
    for tag in (MESSAGE, STREAM, SNIPPET):
        assert thread_of(new_child_id(tid, tag), tag) == tid
    assert thread_of_message(new_message_id(tid)) == tid


@pytest.mark.parametrize("bad", ["", "m1", "x-m1", f"{'t' * 5}-s1", "t1-m", "t1m2"])
def test_an_id_that_is_not_a_message_id_is_refused(bad: str) -> None:
    with pytest.raises(BadRequest):
        thread_of_message(bad)


def test_ids_are_unique_and_url_safe() -> None:
    ids = {new_session_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(i.isascii() and i.isalnum() for i in ids)
