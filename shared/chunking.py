"""Where streamed text may be cut into deltas: word, line, or a custom regex."""

from __future__ import annotations

import re


class Chunker:
    """Splits buffered text at the last chunk boundary; the rest waits for more text."""

    def __init__(self, mode: str = "word") -> None:
        if mode == "word":
            self._pattern = re.compile(r"\s+")
        elif mode == "line":
            self._pattern = re.compile(r"\n")
        else:
            self._pattern = re.compile(mode)

    def split(self, text: str) -> tuple[str, str]:
        """(what may be sent now, what waits)."""
        end = 0
        for match in self._pattern.finditer(text):
            end = match.end()
        return text[:end], text[end:]
