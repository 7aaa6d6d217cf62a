"""Text embedders: an OpenAI-compatible /embeddings endpoint, or a built-in one offline.

Vectors of two models are never compared: each (model, dimension) pair has its
own collection.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from typing import Any, Protocol

import httpx
import numpy as np

from threadline.shared.config import Settings
from threadline.shared.errors import Unavailable
from threadline.shared.llm.openai_compat import RETRY_STATUS, backoff_s, retry_after_s
from threadline.shared.llm.providers import Provider, provider_named

_WORD = re.compile(r"\w+", re.UNICODE)


class Embedder(Protocol):
    model: str
    provider: str  # "" for the built-in hashing embedder (free: its use is not in the usage ledger)

    async def embed(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_counted(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """The vectors and the input tokens the provider counted for them."""


def _bucket(token: str, dim: int) -> tuple[int, float]:
    h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
    return h % dim, 1.0 if (h >> 63) & 1 else -1.0


@functools.lru_cache(maxsize=200_000)
def _word(word: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """What one word adds, as (buckets, signed weights): the word itself (weight 2) and its
    character trigrams (1 each). Words repeat, so this is cached."""
    i, s = _bucket("w:" + word, dim)
    pairs = [(i, 2.0 * s)]
    padded = f"#{word}#"
    pairs += [_bucket("t:" + padded[j:j + 3], dim) for j in range(len(padded) - 2)]
    return np.array([p[0] for p in pairs], dtype=np.intp), np.array([p[1] for p in pairs])


class HashingEmbedder:
    """Deterministic, offline: words and character trigrams hashed into ``dim`` signed
    buckets, L2-normalized. Near-identical wording scores high; it knows no synonyms."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.model = f"hashing-v1-{dim}"

    def embed_one(self, text: str) -> list[float]:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        """All texts at once: one weighted bincount over (text, bucket) pairs."""
        owners: list[int] = []
        buckets: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                b, w = _word(word, self.dim)
                owners.append(row)
                buckets.append(b)
                weights.append(w)
        if not owners:
            return [[0.0] * self.dim for _ in texts]
        lengths = np.fromiter((len(b) for b in buckets), dtype=np.intp, count=len(buckets))
        flat = np.repeat(np.asarray(owners, dtype=np.intp) * self.dim, lengths) + np.concatenate(buckets)
        matrix = np.bincount(flat, weights=np.concatenate(weights), minlength=len(texts) * self.dim)
        matrix = matrix.reshape(len(texts), self.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (matrix / norms).tolist()  # type: ignore[no-any-return]

    provider = ""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_many(texts)

    async def embed_counted(self, texts: list[str]) -> tuple[list[list[float]], int]:
        return self.embed_many(texts), 0


class OpenAIEmbedder:
    """POST {base}/embeddings in batches, on the provider's pooled client, retrying 429/5xx."""

    def __init__(self, provider: Provider, model: str, batch: int = 64, max_retries: int = 3,
                 backoff_s: float = 0.5) -> None:
        self.model = model
        self.provider = provider.name
        self._provider = provider
        self._url = provider.base_url.rstrip("/") + "/embeddings"
        self._batch = batch
        self._max_retries = max_retries
        self._backoff_s = backoff_s

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return (await self.embed_counted(texts))[0]

    async def embed_counted(self, texts: list[str]) -> tuple[list[list[float]], int]:
        out: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), self._batch):
            vectors, used = await self._post(texts[start:start + self._batch])
            out += vectors
            tokens += used
        return out, tokens

    @property
    def _unpooled(self) -> set[str]:
        return self._provider.refused.setdefault(self.model, set())

    async def _post(self, chunk: list[str]) -> tuple[list[list[float]], int]:
        """A batch's vectors. A server that answers per-token vectors (no pooling: llama-cpp-python
        for a model whose file names none) mixes up the texts of a batch: it is then asked one text
        at a time, which the provider remembers for the model."""
        if len(chunk) > 1 and UNPOOLED in self._unpooled:
            singles = [await self._post([text]) for text in chunk]
            return [v for vectors, _ in singles for v in vectors], sum(used for _, used in singles)
        rows, used = await self._request(chunk)
        if len(chunk) > 1 and any(row and isinstance(row[0], list) for row in rows):
            self._unpooled.add(UNPOOLED)
            return await self._post(chunk)
        return [pooled(row) for row in rows], used

    async def _request(self, chunk: list[str]) -> tuple[list[Any], int]:
        client = self._provider.client()
        for attempt in range(self._max_retries + 1):
            wait: float | None = None
            try:
                r = await client.post(self._url, json={"model": self.model, "input": chunk}, timeout=60)
                if r.status_code == 200:
                    body = r.json()
                    data = sorted(body["data"], key=lambda d: d["index"])
                    usage = body.get("usage") or {}
                    return [d["embedding"] for d in data], int(usage.get("prompt_tokens") or 0)
                if r.status_code not in RETRY_STATUS:
                    raise Unavailable(f"embedding endpoint answered {r.status_code}: {r.text[:300]}")
                wait = retry_after_s(r.headers)
                why = f"HTTP {r.status_code}"
            except httpx.TransportError as exc:
                why = f"{type(exc).__name__}: {exc}"
            if attempt == self._max_retries:
                raise Unavailable(f"embedding endpoint failed after {attempt + 1} attempts: {why}")
            await asyncio.sleep(backoff_s(self._backoff_s, attempt, wait))
        raise AssertionError("unreachable")


UNPOOLED = "batched-embeddings"  # what a provider's unpooled model is not asked (see OpenAIEmbedder._post)


def pooled(embedding: Any) -> list[float]:
    """One vector per text: a server without pooling (llama.cpp's, for a model whose file names
    none) answers one vector per token, which are averaged here, as mean pooling does."""
    if embedding and isinstance(embedding[0], list):
        rows = [row for row in embedding if row]
        if not rows or len({len(row) for row in rows}) != 1:
            raise Unavailable("the embedding endpoint answered vectors of different sizes for one text")
        return [sum(column) / len(rows) for column in zip(*rows, strict=True)]
    return list(embedding)


def embedder_for(settings: Settings) -> Embedder:
    """The configured endpoint when EMBEDDING_MODEL is set, else the hashing embedder.

    The endpoint is EMBEDDING_PROVIDER (a provider of the app module), else
    EMBEDDING_BASE_URL, else the ``default`` provider (LLM_BASE_URL).
    """
    if not settings.embedding_model:
        return HashingEmbedder()
    if settings.embedding_provider:
        provider = provider_named(settings, settings.embedding_provider)
    elif settings.embedding_base_url:
        provider = Provider("embeddings", settings.embedding_base_url,
                            settings.embedding_api_key or settings.llm_api_key)
    else:
        provider = provider_named(settings, None)
        if provider is not None and settings.embedding_api_key:
            provider = Provider(provider.name, provider.base_url, settings.embedding_api_key, provider.headers)
    if provider is None:
        return HashingEmbedder()
    return OpenAIEmbedder(provider, settings.embedding_model)
