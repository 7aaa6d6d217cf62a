"""Documents into sections and chunks: the kind read from the bytes; Markdown headings (not inside
code fences), HTML text without scripts, PDF pages; chunks of bounded size that overlap, cut at
boundaries, never across a section."""

from __future__ import annotations

import itertools

import pytest

from tests.support.pdf import pdf_with_pages
from threadline.shared.documents.parsing import chunk, sections, sniff
from threadline.shared.errors import BadRequest, Unsupported


def test_the_kind_is_read_from_the_bytes() -> None:
    assert sniff(pdf_with_pages("x"), "text/plain") == "pdf"
    assert sniff(b"  <!DOCTYPE html><html></html>", "application/pdf") == "html"
    assert sniff(b"# Title", "", "notes.md") == "markdown"
    assert sniff(b"# Title", "text/markdown; charset=utf-8") == "markdown"
    assert sniff(b"plain words") == "text"
    with pytest.raises(Unsupported):
        sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(Unsupported):
        sniff(b"text with a \x00 byte")


def test_markdown_sections_follow_headings_but_not_inside_code() -> None:
    md = b"intro\n# Guide\nabout\n## Install\nrun it\n```\n# a comment, not a heading\n```\n# Other\nmore"
    got = [(s.heading, s.text.strip()) for s in sections(md, "markdown")]
    assert got == [("", "intro"), ("Guide", "about"), ("Guide > Install", "run it\n```\n# a comment, not a heading\n```"),
                   ("Other", "more")]


def test_html_text_without_scripts_styles_or_head() -> None:
    html = (b"<!doctype html><html><head><title>T</title><style>p{color:red}</style></head><body>"
            b"<h1>Intro</h1><p>Hello <b>there</b> &amp; welcome</p><script>alert('x')</script>"
            b"<h2>Next</h2><ul><li>one</li><li>two</li></ul></body></html>")
    got = sections(html, "html")
    assert [s.heading for s in got] == ["Intro", "Next"]
    assert got[0].text == "Hello there & welcome" and "alert" not in " ".join(s.text for s in got)
    assert got[1].text.split() == ["one", "two"]


def test_pdf_pages_become_sections() -> None:
    got = sections(pdf_with_pages("the first page\nsecond line", "page two talks about tides"), "pdf")
    assert [s.heading for s in got] == ["page 1", "page 2"]
    assert "first page" in got[0].text and "tides" in got[1].text
    with pytest.raises(BadRequest):
        sections(b"%PDF-1.4\nnot really a pdf", "pdf")


def test_chunks_are_bounded_overlap_and_stay_in_their_section() -> None:
    words = " ".join(f"word{i}." for i in range(400))
    parts = sections(f"# A\n{words}\n# B\nshort".encode(), "markdown")
    got = chunk(parts, size=300, overlap=60)
    assert all(len(c.text) <= 300 for c in got)
    assert [c.index for c in got] == list(range(len(got)))
    a = [c for c in got if c.heading == "A"]
    assert len(a) > 5 and got[-1].heading == "B" and got[-1].text == "short"
    for first, second in itertools.pairwise(a):
        assert first.text[-20:].split()[-1] in second.text  # consecutive chunks share text
        assert not second.text[0].isspace() and second.text.split()[0].startswith("word")  # whole words
    assert "".join(c.text for c in a).count("word399.") >= 1


@pytest.mark.parametrize(("size", "overlap"), [(50, 0), (1000, 600), (1000, -1)])
def test_bad_chunk_settings_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(BadRequest):
        chunk(sections(b"text", "text"), size=size, overlap=overlap)


def test_a_document_with_too_many_chunks_is_refused() -> None:
    with pytest.raises(BadRequest):
        chunk(sections(("x " * 20_000).encode(), "text"), size=100, overlap=0, max_chunks=10)
