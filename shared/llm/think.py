"""``<think>…</think>`` in a model's content (servers without a reasoning parser) as reasoning."""

from __future__ import annotations

from typing import Literal

ThinkTags = Literal["auto", "always", "off"]
OPEN, CLOSE = "<think>", "</think>"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkSplitter:
    """Splits streamed content into ("reasoning" | "text", piece) as it arrives.

    ``auto``: content that opens with ``<think>`` is reasoning until ``</think>``;
    ``always``: content is reasoning until ``</think>`` (templates that put the
    opening tag in the prompt); ``off``: all content is text. Tags split across
    chunks are recognised; the answer's leading blank lines are dropped.
    """

    def __init__(self, mode: ThinkTags = "auto") -> None:
        self._state = {"auto": "start", "always": "think", "off": "text"}[mode]
        self._buf = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        self._buf += text
        out: list[tuple[str, str]] = []
        while self._buf:
            if self._state == "start":
                head = self._buf.lstrip()
                if not head or (len(head) < len(OPEN) and OPEN.startswith(head)):
                    break  # not enough yet to tell
                if head.startswith(OPEN):
                    self._state, self._buf = "think", head[len(OPEN):]
                else:
                    self._state = "text"
            elif self._state == "think":
                end = self._buf.find(CLOSE)
                if end >= 0:
                    if end:
                        out.append(("reasoning", self._buf[:end]))
                    self._state, self._buf = "answer", self._buf[end + len(CLOSE):]
                    continue
                keep = _partial_suffix(self._buf, CLOSE)
                if len(self._buf) > keep:
                    out.append(("reasoning", self._buf[:len(self._buf) - keep]))
                self._buf = self._buf[len(self._buf) - keep:]
                break
            elif self._state == "answer":
                self._buf = self._buf.lstrip()
                if self._buf:
                    self._state = "text"
            else:
                out.append(("text", self._buf))
                self._buf = ""
        return out

    def end(self) -> list[tuple[str, str]]:
        """What is still held back when the stream ends."""
        rest, self._buf = self._buf, ""
        if not rest or (not rest.strip() and self._state in ("start", "answer")):
            return []
        return [("reasoning" if self._state == "think" else "text", rest)]
