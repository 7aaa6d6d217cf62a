"""Where file bytes live: a directory under DATA_DIR, or an S3-compatible bucket.

Both through obstore (the object_store crate of Apache Arrow, from Python): one
interface for a local directory and any S3-compatible service (AWS, MinIO, R2,
Ceph...), with range reads and presigned URLs. Blobs are content-addressed: a
blob's path is its sha256, so the same bytes are stored once.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import obstore
from obstore.store import LocalStore, S3Store

from threadline.shared.config import Settings
from threadline.shared.errors import NotFound, Unavailable

log = logging.getLogger(__name__)
STREAM_CHUNK = 64 << 10  # what one download holds at a time, whatever the file's size


def blob_path(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


class Blobs:
    """Content-addressed bytes in a local directory or a bucket (see the module docstring)."""

    def __init__(self, make: Callable[[], Any], *, bucket: bool) -> None:
        self._make_store = make  # made on first use (a directory is created only when a file comes)
        self._made: Any = None
        self.bucket = bucket  # True: a bucket the model provider may fetch from with a signed URL

    @property
    def _store(self) -> Any:
        if self._made is None:
            self._made = self._make_store()
        return self._made

    @classmethod
    def from_settings(cls, settings: Settings) -> Blobs:
        """The blob store the settings name (one per process and configuration)."""
        key = (settings.files_bucket, settings.files_s3_endpoint, settings.files_s3_region,
               settings.files_s3_access_key_id, settings.files_s3_secret_access_key, settings.data_dir)
        found = _MADE.get(key)
        if found is None:
            found = _MADE[key] = cls._make(settings)
        return found

    @classmethod
    def _make(cls, settings: Settings) -> Blobs:
        if not settings.files_bucket:
            root = Path(settings.data_dir) / "files"

            def local() -> LocalStore:
                root.mkdir(parents=True, exist_ok=True)
                return LocalStore(str(root.resolve()))

            return cls(local, bucket=False)
        url = settings.files_bucket.removeprefix("s3://")
        bucket, _, prefix = url.partition("/")
        config: dict[str, Any] = {"region": settings.files_s3_region}
        if settings.files_s3_endpoint:
            config["endpoint"] = settings.files_s3_endpoint
            config["virtual_hosted_style_request"] = False
        if settings.files_s3_access_key_id:
            config["access_key_id"] = settings.files_s3_access_key_id
            config["secret_access_key"] = settings.files_s3_secret_access_key or ""
        http = bool(settings.files_s3_endpoint and settings.files_s3_endpoint.startswith("http://"))
        return cls(lambda: S3Store(bucket, prefix=prefix.strip("/") or None, client_options={"allow_http": http},
                                   **config), bucket=True)

    async def put(self, digest: str, data: bytes, media_type: str) -> None:
        try:
            attributes = {"Content-Type": media_type} if self.bucket else None  # (a directory keeps none)
            await obstore.put_async(self._store, blob_path(digest), data, attributes=attributes)
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def exists(self, digest: str) -> bool:
        try:
            await obstore.head_async(self._store, blob_path(digest))
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise _unavailable(exc) from exc
        return True

    async def read(self, digest: str, start: int = 0, end: int | None = None) -> bytes:
        """The bytes from ``start`` to ``end`` (exclusive; None: to the end)."""
        try:
            if start == 0 and end is None:
                result = await obstore.get_async(self._store, blob_path(digest))
                return bytes(await result.bytes_async())
            return bytes(await obstore.get_range_async(self._store, blob_path(digest), start=start, end=end))
        except FileNotFoundError:
            raise NotFound("the file's content is gone") from None
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def open(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes from ``start`` to ``end`` (exclusive; None: to the end) as chunks of about
        STREAM_CHUNK, read as they are consumed. NotFound or Unavailable are raised here, before the
        first chunk; a store failing later ends the iteration with Unavailable."""
        options: Any = None
        if end is not None:
            options = {"range": (start, end)}
        elif start:
            options = {"range": {"offset": start}}
        try:
            result = await obstore.get_async(self._store, blob_path(digest), options=options)
        except FileNotFoundError:
            raise NotFound("the file's content is gone") from None
        except Exception as exc:
            raise _unavailable(exc) from exc
        return _chunks(result.stream(min_chunk_size=STREAM_CHUNK))

    async def delete(self, digest: str) -> None:
        try:
            await obstore.delete_async(self._store, blob_path(digest))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def signed_url(self, digest: str, ttl_s: int) -> str | None:
        """A presigned GET URL of the bucket (None for a local directory: the server signs its own)."""
        if not self.bucket:
            return None
        try:
            url: str = await obstore.sign_async(self._store, "GET", blob_path(digest),
                                                datetime.timedelta(seconds=ttl_s))
        except Exception as exc:
            raise _unavailable(exc) from exc
        return url


_MADE: dict[tuple[str | None, ...], Blobs] = {}


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    try:
        async for buf in stream:
            yield bytes(buf)
    except Exception as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: Exception) -> Unavailable:
    log.warning("file storage failed: %r", exc)
    return Unavailable("file storage is unavailable; try again")
