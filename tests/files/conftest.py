"""Both blob stores: a directory (DATA_DIR/files) and a bucket on a real S3-compatible server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.s3 import s3_server
from tests.support.stack import Stack, run_stack
from threadline.shared.config import load_settings
from threadline.shared.files.blobs import Blobs
from threadline.shared.files.store import FileStore
from threadline.shared.threads import Store


@contextlib.contextmanager
def stack_on(store: str, tmp: Path, env: dict[str, str]) -> Iterator[Stack]:
    """A stack (one web process, one worker) whose files live in a directory (``local``) or in a
    bucket on its own S3 server (``s3``)."""
    if store == "local":
        with run_stack(tmp, webs=1, workers=1, env=env) as stack:
            yield stack
        return
    with s3_server(tmp / "moto.log") as s3, run_stack(tmp, webs=1, workers=1, env={**env, **s3}) as stack:
        yield stack


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as env:
        yield env


@pytest.fixture(params=["local", "s3"])
async def files(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> AsyncIterator[FileStore]:
    env = {"DATA_DIR": str(tmp_path), "FILES_MAX_BYTES": "65536"}
    if request.param == "s3":
        env.update(request.getfixturevalue("s3"))
    settings = load_settings(env)
    yield FileStore(store.redis, store.scripts, Blobs.from_settings(settings), max_bytes=settings.files_max_bytes,
                    allowed=frozenset(settings.files_types.split(",")))
