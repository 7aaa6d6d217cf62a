"""A document's text in sections, and its chunks.

The kind of a document is read from its bytes (a PDF starts with ``%PDF-``,
HTML with a doctype or an ``<html>`` tag), not taken from the client; a text
is Markdown when its media type or key says so. Sections follow the
document's headings (Markdown ``#`` lines, HTML ``h1``-``h6``, PDF pages), and
chunks never cross a section: each knows the heading it sits under.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from threadline.shared.errors import BadRequest, TooLarge, Unsupported

Kind = Literal["text", "markdown", "html", "pdf"]


@dataclass(frozen=True, slots=True)
class Section:
    heading: str  # "" before the first heading
    text: str


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    heading: str
    text: str


def too_large(limit: int) -> str:
    return f"documents are at most {limit} bytes"


def check_document(data: bytes, limit: int, media_type: str | None = None, key: str = "") -> Kind:
    """What a document to be added is; TooLarge, BadRequest (empty) or Unsupported before it is stored."""
    if len(data) > limit:
        raise TooLarge(too_large(limit))
    if not data.strip():
        raise BadRequest("the document is empty")
    return sniff(data, media_type, key)


def sniff(data: bytes, media_type: str | None = None, key: str = "") -> Kind:
    """What the bytes are; Unsupported for anything else (images, archives, non-UTF-8 binary)."""
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    lowered = head[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "html"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unsupported("documents must be text, Markdown, HTML or PDF") from exc
    if b"\x00" in data:
        raise Unsupported("documents must be text, Markdown, HTML or PDF")
    if (media_type or "").split(";")[0].strip() in ("text/markdown", "text/x-markdown") or \
            key.lower().endswith((".md", ".markdown")):
        return "markdown"
    return "text"


def sections(data: bytes, kind: Kind) -> list[Section]:
    if kind == "pdf":
        return _pdf(data)
    text = data.decode("utf-8")
    if kind == "html":
        return _html(text)
    if kind == "markdown":
        return _markdown(text)
    return [Section("", text)]


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown(text: str) -> list[Section]:
    out: list[Section] = []
    trail: list[str] = []  # the heading path: "Guide > Install"
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m is None:
            lines.append(line)
            continue
        out.append(Section(" > ".join(trail), "\n".join(lines)))
        level = len(m.group(1))
        trail = [*trail[: level - 1], m.group(2)]
        lines = []
    out.append(Section(" > ".join(trail), "\n".join(lines)))
    return [s for s in out if s.text.strip()]


class _HtmlText(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "head"}
    BLOCK = {"p", "div", "li", "tr", "br", "section", "article", "pre", "blockquote", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._heading: str | None = None
        self._current = ""
        self._parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._close()
            self._heading = ""
        elif tag in self.BLOCK:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self._current, self._heading = " ".join(self._heading.split()), None
        elif tag in self.BLOCK:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._heading is not None:
            self._heading += data
        else:
            self._parts.append(data)

    def _close(self) -> None:
        text = re.sub(r"[ \t]+", " ", "".join(self._parts))
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
        if text:
            self.sections.append(Section(self._current, text))
        self._parts = []

    def close(self) -> None:
        super().close()
        self._close()


def _html(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return parser.sections


def _pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"the PDF cannot be read: {exc}") from exc
    return [Section(f"page {n}", text) for n, text in enumerate(pages, 1) if text.strip()]


def chunk(parts: list[Section], size: int = 1000, overlap: int = 200, max_chunks: int = 5000) -> list[Chunk]:
    """Pieces of at most ``size`` characters, each sharing ``overlap`` characters with the one
    before it in its section, cut at a paragraph, line, sentence or word boundary when one is near."""
    if size < 100 or not 0 <= overlap < size // 2:
        raise BadRequest("chunk size must be at least 100 characters and overlap under half of it")
    out: list[Chunk] = []
    for section in parts:
        text = section.text.strip()
        start = 0
        while start < len(text):
            end = min(len(text), start + size)
            if end < len(text):
                end = _boundary(text, start + size // 2, end)
            piece = text[start:end].strip()
            if piece:
                if len(out) >= max_chunks:
                    raise BadRequest(f"the document has more than {max_chunks} chunks; split it or raise the size")
                out.append(Chunk(len(out), section.heading, piece))
            if end >= len(text):
                break
            start = max(start + 1, end - overlap)
            start = _word_start(text, start)
    return out


def _boundary(text: str, low: int, high: int) -> int:
    """The best cut in text[low:high]: after a blank line, a line, a sentence, or a space."""
    window = text[low:high]
    for mark in ("\n\n", "\n", ". ", "! ", "? ", " "):
        at = window.rfind(mark)
        if at != -1:
            return low + at + len(mark)
    return high


def _word_start(text: str, at: int) -> int:
    """Move an overlap start forward to the beginning of a word."""
    while 0 < at < len(text) and not text[at - 1].isspace() and not text[at].isspace():
        at += 1
    return at
