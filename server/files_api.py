"""Files over HTTP: upload (multipart or the raw body), list, read, delete, download with
ranges, and short-lived signed links a browser or a model provider can fetch without a token.

A signed link of the local store is ours (``/api/files/{id}/content?exp=&sig=``, an HMAC of
the id and expiry with the auth secret); of a bucket, the bucket's own presigned URL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncGenerator
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from threadline.server.auth import identity_of
from threadline.server.context import Services
from threadline.server.http_api import _raw_body, json_response
from threadline.shared.config import Settings
from threadline.shared.errors import BadRequest, Unauthorized
from threadline.shared.files.sniff import IMAGE_TYPES
from threadline.shared.files.store import FileRecord
from threadline.shared.storage.pagination import MAX_PAGE, parse_digits

MULTIPART_OVERHEAD = 64 << 10  # headers and boundaries around the file in a multipart body
INLINE = IMAGE_TYPES | {"application/pdf", "text/plain"}


def sign(secret: str, file_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{file_id}.{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def public_base(settings: Settings, request: Request) -> str:
    """Where browsers reach this server, for the links it builds: PUBLIC_URL when set (the Host
    header is the client's to choose), else the request's own origin."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def local_link(secret: str, file_id: str, ttl_s: int) -> tuple[str, int]:
    """(path of a signed download link, its expiry in epoch seconds)."""
    expires = int(time.time()) + ttl_s
    return f"/api/files/{file_id}/content?exp={expires}&sig={sign(secret, file_id, expires)}", expires


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single ``Range: bytes=`` header; None for the whole file.
    A range that cannot be satisfied raises BadRequest with status 416."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None  # none, another unit, or several ranges: the whole file (allowed by RFC 9110)
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            start, end = max(0, size - int(last)), size
        else:
            start = int(first)
            end = min(int(last) + 1, size) if last else size
    except ValueError:
        return None
    if start >= size or start >= end:
        raise RangeNotSatisfiable(f"bytes {header[6:]} are outside the file's {size}")
    return start, end


class RangeNotSatisfiable(BadRequest):
    status = 416


def routes(services: Services) -> list[Route]:
    files = services.files
    settings = services.settings

    async def user_of(request: Request) -> str:
        return (await identity_of(services, request)).user_id

    async def reader_of(request: Request) -> str | None:
        """Who may read: the owner (their id), or an admin token (None: any file, for the playground)."""
        identity = await identity_of(services, request)
        return None if identity.admin else identity.user_id

    async def upload(request: Request) -> Response:
        """POST a file: multipart/form-data (a ``file`` field) or the bytes as the body with ``?name=``."""
        user_id = await user_of(request)
        limit = files.max_bytes
        ctype = request.headers.get("content-type", "")
        too_large = f"a file may be at most {limit:,} bytes (FILES_MAX_BYTES)"
        if ctype.startswith("multipart/form-data"):
            body = await _raw_body(request, limit + MULTIPART_OVERHEAD, too_large)
            name, data = await _multipart_file(request, body, limit)
        else:
            data = await _raw_body(request, limit, too_large)
            name = request.query_params.get("name", "")
        record = await files.upload(user_id, name or "file", data)
        return json_response(record, 201)

    async def listing(request: Request) -> Response:
        user_id = await user_of(request)
        q = request.query_params
        num = parse_digits(q.get("numItems", "50"), "numItems", MAX_PAGE) or 1
        return json_response(await files.list(user_id, num_items=num, cursor=q.get("cursor")))

    async def one(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if request.method == "DELETE":
            await files.delete(file_id, await user_of(request))
            return json_response({"deleted": True})
        return json_response(await files.get(file_id, await reader_of(request)))

    async def link(request: Request) -> Response:
        """A short-lived signed URL for the file (FILES_URL_TTL_S)."""
        record = await files.get(request.path_params["file_id"], await reader_of(request))
        ttl = settings.files_url_ttl_s
        url = await files.blobs.signed_url(record.hash, ttl)
        if url is not None:
            return json_response({"url": url, "expiresAt": int(time.time()) + ttl})
        path, expires = local_link(services.secret, record.file_id, ttl)
        return json_response({"url": public_base(settings, request) + path, "expiresAt": expires})

    async def content(request: Request) -> Response:
        """The bytes: with the owner's token, or a signed link; Range requests answer 206."""
        file_id = request.path_params["file_id"]
        q = request.query_params
        if "sig" in q:
            expires = parse_digits(q.get("exp", ""), "exp", 1 << 40)
            if expires < time.time() or not hmac.compare_digest(q["sig"], sign(services.secret, file_id, expires)):
                raise Unauthorized("the link expired or is not valid")
            record = await files.get(file_id, None)
        else:
            record = await files.get(file_id, await reader_of(request))
        return await _download(record, request)

    async def _download(record: FileRecord, request: Request) -> Response:
        size = record.size
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": _disposition(record, request.query_params.get("download") == "1"),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
            "ETag": f'"{record.hash[:32]}"',
        }
        try:
            wanted = byte_range(request.headers.get("range"), size)
        except RangeNotSatisfiable:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status, (start, end) = (200, (0, size)) if wanted is None else (206, wanted)
        if wanted is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        # streamed from the store a chunk at a time: a slow reader holds one chunk, not the file
        chunks = await (files.open(record) if wanted is None else files.open(record, start, end))
        return StreamingResponse(chunks, status, headers, media_type=record.media_type)

    return [
        Route("/api/files", upload, methods=["POST"]),
        Route("/api/files", listing, methods=["GET"]),
        Route("/api/files/{file_id}", one, methods=["GET", "DELETE"]),
        Route("/api/files/{file_id}/url", link, methods=["POST"]),
        Route("/api/files/{file_id}/content", content, methods=["GET"]),
    ]


async def _multipart_file(request: Request, body: bytes, limit: int) -> tuple[str, bytes]:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=8,
                                     max_part_size=64 << 10).parse()
    except MultiPartException as exc:
        raise BadRequest(f"the multipart body is malformed: {exc.message}") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("a multipart upload needs a `file` field holding the file")
    try:
        data = await upload.read()
    finally:
        await form.close()
    name = form.get("name")
    return (name if isinstance(name, str) and name else upload.filename or "file"), data


def _disposition(record: FileRecord, download: bool) -> str:
    kind = "inline" if record.media_type in INLINE and not download else "attachment"
    ascii_name = record.name.encode("ascii", "replace").decode().replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(record.name)}"

