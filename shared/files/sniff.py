"""What an uploaded file is, read from its bytes (never from what the client claims).

Binary kinds by their signatures; text by being valid UTF-8 without control bytes,
then by its name's extension (Markdown, CSV) or its shape (JSON).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from threadline.shared.errors import BadRequest, TooLarge, Unsupported

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (  # (bytes, at offset, media type)
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"fLaC", 0, "audio/flac"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x7fELF", 0, "application/x-executable"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_TEXT_BY_EXT = {".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv", ".json": "application/json"}
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def sniff(data: bytes, name: str = "") -> str:
    """The media type of ``data`` ("application/octet-stream" when it is nothing known)."""
    for signature, at, media_type in _SIGNATURES:
        if data[at:at + len(signature)] == signature:
            return media_type
    if data[:4] == b"RIFF" and data[8:12] in _RIFF:
        return _RIFF[data[8:12]]
    if data[4:8] == b"ftyp":
        return "image/heic" if data[8:12] in (b"heic", b"heix", b"mif1") else "video/mp4"
    if _is_text(data):
        ext = PurePosixPath(name.lower()).suffix
        if ext in _TEXT_BY_EXT:
            return _TEXT_BY_EXT[ext]
        if data.lstrip()[:1] in (b"{", b"[") and _is_json(data):
            return "application/json"
        return "text/plain"
    return "application/octet-stream"


def is_text_type(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type == "application/json"


def check_upload(data: bytes, name: str, *, max_bytes: int, allowed: frozenset[str]) -> str:
    """The sniffed media type of an upload, or a clear error: empty (400), too large (413),
    a kind not allowed (415)."""
    if not data:
        raise BadRequest("the file is empty")
    if len(data) > max_bytes:
        raise TooLarge(f"a file may be at most {max_bytes:,} bytes (FILES_MAX_BYTES)")
    media_type = sniff(data, name)
    if media_type not in allowed:
        raise Unsupported(f"files of type {media_type} are not accepted; allowed: {', '.join(sorted(allowed))}")
    return media_type


def clean_name(name: str) -> str:
    """A file name safe to keep and to send back in Content-Disposition: its last path
    segment, without control characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"').strip()
    return cleaned[:200] or "file"


def _is_text(data: bytes) -> bool:
    head = data[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not only a character cut at the sample's end
            return False
    return not any(b < 9 or 13 < b < 32 for b in head if b != 27)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
