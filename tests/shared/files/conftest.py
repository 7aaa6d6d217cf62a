"""Both blob stores: a directory (DATA_DIR/files) and a bucket on a real S3-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.s3 import s3_server
from threadline.shared.config import load_settings
from threadline.shared.files.blobs import Blobs
from threadline.shared.files.store import FileStore
from threadline.shared.threads import Store


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
    yield FileStore(store.redis, store.scripts, store.outbox, Blobs.from_settings(settings), max_bytes=settings.files_max_bytes,
                    allowed=frozenset(settings.files_types.split(",")))
