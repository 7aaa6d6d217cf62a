"""OpenAI-compatible image generation (``POST /images/generations``): the bytes of one image."""

from __future__ import annotations

import base64
import binascii

import httpx

from threadline.shared.errors import BadRequest
from threadline.shared.llm.base import ModelError
from threadline.shared.llm.providers import Provider

TIMEOUT = httpx.Timeout(connect=10.0, read=180.0, write=30.0, pool=10.0)  # images take a while


async def generate_image(provider: Provider, model: str, prompt: str, *, size: str | None = None) -> bytes:
    """One image for ``prompt`` from ``model`` at ``provider`` (b64_json, or a URL it is fetched from)."""
    body: dict[str, object] = {"model": model, "prompt": prompt, "n": 1}
    if size:
        body["size"] = size
    if model.startswith("dall-e"):  # gpt-image models always answer b64_json and refuse the field
        body["response_format"] = "b64_json"
    url = provider.base_url.rstrip("/") + "/images/generations"
    try:
        r = await provider.client().post(url, json=body, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ModelError(f"the image service cannot be reached: {exc}") from exc
    if r.status_code >= 400:
        message = _error_text(r)
        if r.status_code in (400, 422):
            raise BadRequest(f"the image service refused the request: {message}")
        raise ModelError(f"the image service failed ({r.status_code}): {message}")
    try:
        item = r.json()["data"][0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelError("the image service answered without an image") from exc
    if item.get("b64_json"):
        try:
            return base64.b64decode(item["b64_json"], validate=True)
        except binascii.Error as exc:
            raise ModelError("the image service answered with invalid base64") from exc
    if item.get("url"):
        try:
            fetched = await provider.client().get(item["url"], timeout=TIMEOUT)
            fetched.raise_for_status()
        except httpx.HTTPError as exc:
            raise ModelError(f"the generated image could not be fetched: {exc}") from exc
        return fetched.content
    raise ModelError("the image service answered without an image")


def _error_text(r: httpx.Response) -> str:
    try:
        error = r.json().get("error")
        return str(error.get("message") if isinstance(error, dict) else error or r.text)[:500]
    except ValueError:
        return r.text[:500]
