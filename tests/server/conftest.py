"""In-process fixtures for the server's modules: the services of one web process on the test Valkey."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from threadline.server.context import Context, Services
from threadline.server.delta_log import DeltaLog
from threadline.server.fanout import ChangeListener
from threadline.server.live import LiveQueries
from threadline.shared.auth import Identity
from threadline.shared.config import load_settings
from threadline.shared.runtime import Runtime
from threadline.shared.threads import Store


@pytest.fixture
async def services(store: Store, tmp_path: Path) -> AsyncIterator[Services]:
    """A web process's services without the generation queue (its listener running)."""
    listener = ChangeListener(store.redis)
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    s = Services(runtime=Runtime(settings, redis=store.redis), secret="x" * 32, dev_mode=False,
                 listener=listener, live=LiveQueries(listener, DeltaLog(store)))
    listener.start()
    try:
        yield s
    finally:
        await listener.stop()


@pytest.fixture
def as_user(services: Services) -> Callable[[str], Context]:
    return lambda user_id: Context(services, Identity(user_id))
