"""Files in a model's context: what each file or image part becomes in the request.

- Images: ``image_url`` content parts; a data URL from the local store, a short-lived
  signed URL from a bucket when the provider fetches URLs itself.
- PDFs: ``file`` content parts (OpenAI's file inputs) where the provider takes them
  (``Provider.pdf_files``) or the agent asks (``pdf_input="file"``); otherwise their
  text, read with pypdf.
- Text-like files (text, Markdown, CSV, JSON): inlined as text.
- Anything else, or a kind the model does not take: a note in its place, or the reply
  fails, as the agent says (``unsupported_files``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from threadline.shared.agents import Agent
from threadline.shared.documents.parsing import sections
from threadline.shared.errors import BadRequest, Unsupported
from threadline.shared.files.refs import file_ids
from threadline.shared.files.sniff import IMAGE_TYPES, is_text_type
from threadline.shared.files.store import FileRecord, FileStore
from threadline.shared.llm.base import Inputs
from threadline.shared.records import FilePart, ImagePart, Message

TEXT_LIMIT = 100_000  # characters of one file's text given to the model
URL_TTL_S = 3600  # a signed URL must outlive the model call (and its retries)

Blocks = list[dict[str, Any]]


async def attachments(files: FileStore, messages: Sequence[Message], inputs: Inputs, agent: Agent,
                      known: dict[str, Blocks] | None = None) -> dict[str, Blocks]:
    """The content blocks of every file and image part of ``messages``, by file id (or url).
    ``known``: blocks made for an earlier step of the same reply; only the others are read, and
    ``known`` gains them (so a reply's steps read each file once)."""
    out = known if known is not None else {}
    parts = [p for m in messages for p in m.parts
             if isinstance(p, FilePart | ImagePart) and (p.file_id or p.url) and (p.file_id or p.url) not in out]
    records = await files.many(file_ids(parts))
    for p in parts:
        key = p.file_id or p.url
        if key not in out:
            out[key] = await _blocks(files, p, records.get(p.file_id or ""), inputs, agent)
    return out


async def _blocks(files: FileStore, part: FilePart | ImagePart, record: FileRecord | None, inputs: Inputs,
                  agent: Agent) -> Blocks:
    if not part.file_id:  # a file at a URL the client gave
        if isinstance(part, ImagePart) or part.mime_type in IMAGE_TYPES:
            return [{"type": "image_url", "image_url": {"url": part.url}}] if inputs.images else \
                _unsupported(agent, part.url, part.mime_type or "image", "this model takes no images")
        return _unsupported(agent, part.url, part.mime_type, "files at URLs are not fetched")
    if record is None:
        return [_text(f"[file {part.filename or part.file_id} is no longer available]")]
    kind, name = record.media_type, record.name
    try:
        if kind in IMAGE_TYPES:
            if not inputs.images:
                return _unsupported(agent, name, kind, "this model takes no images")
            url = await files.blobs.signed_url(record.hash, URL_TTL_S) if inputs.fetches_urls else None
            return [{"type": "image_url", "image_url": {"url": url or _data_url(kind, await files.read(record))}}]
        if kind == "application/pdf":
            as_file = agent.pdf_input == "file" or (agent.pdf_input == "auto" and inputs.pdf_files)
            data = await files.read(record)
            if as_file:
                return [{"type": "file", "file": {"filename": name, "file_data": _data_url(kind, data)}}]
            text = "\n\n".join(f"({s.heading})\n{s.text}" for s in sections(data, "pdf"))
            return [_text(f"[file {name}, its text]\n{_cut(text)}")]
        if is_text_type(kind):
            text = (await files.read(record, 0, TEXT_LIMIT * 4)).decode("utf-8", "replace")
            return [_text(f"[file {name}]\n{_cut(text)}")]
    except BadRequest as exc:  # e.g. a PDF pypdf cannot read
        return _unsupported(agent, name, kind, exc.message)
    return _unsupported(agent, name, kind, "this model takes no files of this kind")


def _unsupported(agent: Agent, name: str, kind: str, why: str) -> Blocks:
    if agent.unsupported_files == "fail":
        raise Unsupported(f"{name} ({kind}) cannot be given to the model: {why}")
    return [_text(f"[{name} ({kind}) is not shown to you: {why}]")]


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + f"\n[... {len(text) - TEXT_LIMIT:,} more characters]"


def _data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"
