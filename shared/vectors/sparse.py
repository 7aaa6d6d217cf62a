"""Sparse text vectors: Qdrant's BM25 (tokenizer, stopwords and stemming per language).

Documents get BM25 term-frequency weights and queries one weight per distinct
term; the IDF part is the engine's (the sparse vectors have the IDF modifier),
so a term weighs by how rare it is in the searched corpus. The same model runs
in every process and for both engines (Qdrant Edge embedded, a Qdrant server).
"""

from __future__ import annotations

import functools

import qdrant_edge as qe

AVG_LEN = 40.0  # tokens of a typical chat message (BM25's length normalisation)
LANGUAGE = "english"


@functools.cache
def _model() -> qe.Bm25:
    return qe.Bm25(qe.Bm25Config(avg_len=AVG_LEN, language=LANGUAGE))


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """BM25 term-frequency weights of a stored text (the IDF part comes from the engine)."""
    v = _model().embed_document(text)
    return list(v.indices), list(v.values)


def query_vector(text: str) -> tuple[list[int], list[float]]:
    v = _model().embed_query(text)
    return list(v.indices), list(v.values)
