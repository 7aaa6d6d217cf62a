"""Where streamed text is cut: never inside a word (or line, or custom boundary)."""

from __future__ import annotations

from threadline.shared.chunking import Chunker


def test_words_wait_until_their_boundary() -> None:
    c = Chunker("word")
    assert c.split("hello wor") == ("hello ", "wor")
    assert c.split("hello") == ("", "hello")
    assert c.split("a b\n") == ("a b\n", "")


def test_lines_and_custom_patterns() -> None:
    assert Chunker("line").split("one\ntwo") == ("one\n", "two")
    assert Chunker(r"[.!?]\s").split("Hi. How are") == ("Hi. ", "How are")
