"""Text embedders: an OpenAI-compatible /embeddings endpoint, or a built-in one offline.

Vectors of two models are never compared: each (model, dimension) pair has its
own collection.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Protocol

import httpx

from shared.config import Settings
from shared.errors import Unavailable

_WORD = re.compile(r"\w+", re.UNICODE)


class Embedder(Protocol):
    model: str

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


def _bucket(token: str, dim: int) -> tuple[int, float]:
    h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
    return h % dim, 1.0 if (h >> 63) & 1 else -1.0


class HashingEmbedder:
    """Deterministic, offline: words and character trigrams hashed into ``dim`` signed
    buckets, L2-normalized. Near-identical wording scores high; it knows no synonyms."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.model = f"hashing-v1-{dim}"

    def embed_one(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in _WORD.findall(text.lower()):
            i, s = _bucket("w:" + word, self.dim)
            vec[i] += 2.0 * s
            padded = f"#{word}#"
            for j in range(len(padded) - 2):
                i, s = _bucket("t:" + padded[j:j + 3], self.dim)
                vec[i] += s
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_one(t) for t in texts]


class OpenAIEmbedder:
    """POST {base}/embeddings in batches."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, batch: int = 64) -> None:
        self.model = model
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._batch = batch

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        async with httpx.AsyncClient(timeout=60) as client:
            for start in range(0, len(texts), self._batch):
                chunk = texts[start:start + self._batch]
                try:
                    r = await client.post(self._url, json={"model": self.model, "input": chunk},
                                          headers=self._headers)
                    r.raise_for_status()
                except httpx.HTTPError as exc:
                    raise Unavailable(f"embedding endpoint failed: {exc}") from exc
                data = sorted(r.json()["data"], key=lambda d: d["index"])
                out += [d["embedding"] for d in data]
        return out


def embedder_for(settings: Settings) -> Embedder:
    """The configured endpoint when EMBEDDING_MODEL is set, else the hashing embedder."""
    base = settings.embedding_base_url or settings.llm_base_url
    if settings.embedding_model and base:
        return OpenAIEmbedder(base, settings.embedding_model, settings.embedding_api_key or settings.llm_api_key)
    return HashingEmbedder()
