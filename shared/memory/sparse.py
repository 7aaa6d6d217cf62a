"""Sparse text vectors: BM25-style term weights; Qdrant applies the IDF (modifier IDF)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

_WORD = re.compile(r"\w+", re.UNICODE)
K1, B, AVG_LEN = 1.2, 0.75, 40.0
STOP = frozenset("a an and are as at be but by for from has have i in is it its of on or that the this to was "
                 "were will with you your me my we our".split())


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP]


def term_id(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "big")


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """BM25 term-frequency weights of a stored text (the IDF part comes from Qdrant)."""
    counts = Counter(terms(text))
    length = sum(counts.values()) or 1
    merged: dict[int, float] = {}
    for term, tf in counts.items():
        weight = tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / AVG_LEN))
        merged[term_id(term)] = merged.get(term_id(term), 0.0) + weight
    return list(merged), list(merged.values())


def query_vector(text: str) -> tuple[list[int], list[float]]:
    ids = sorted({term_id(t) for t in terms(text)})
    return ids, [1.0] * len(ids)
