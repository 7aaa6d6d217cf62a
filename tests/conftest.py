"""Fixtures: a real Valkey server (or a local cluster: tests/support/store.py) for the whole session (or\nTEST_REDIS_URL), flushed per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import procs
from tests.support.store import CLUSTER, closing_clients, flush, store_server
from threadline.shared.storage.client import connect
from threadline.shared.threads import Store

TEST_SECRET = "test-secret-0123456789abcdef0123456789"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slots-report", metavar="PATH", default=None,
                     help="record the hash slots of every script call and write a table (tests/support/slots.py)")


def pytest_configure(config: pytest.Config) -> None:
    from tests.support import slots

    slots.install()  # always: a script call over two slots fails the run (below)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a cluster, the tests marked any_store (they run on a store of their own, or none) are the
    same as on one node: left out."""
    if not CLUSTER:
        return
    same = [item for item in items if item.get_closest_marker("any_store")]
    if same:
        config.hook.pytest_deselected(items=same)
        items[:] = [item for item in items if not item.get_closest_marker("any_store")]


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.support import slots

    _collect_left_sockets()

    path = session.config.getoption("--slots-report")
    if path:
        slots.write(Path(path))
    spread = slots.violations()
    if spread:
        print(f"\nscripts whose calls named keys of several hash slots (one slot each is the rule: "
              f"tests/support/slots.py): {', '.join(spread)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _collect_left_sockets() -> None:
    """Every test has run: collect what is left, telling how many sockets it held. A reference cycle
    that held a socket (an asyncio cluster client's connection redis-py meant to close in a task
    its test's loop never ran, say) is collected socket first at exit, and pytest would fail the
    whole run on that socket's ResourceWarning after every test passed. During the run such
    warnings still fail the test in which they arise."""
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    left = [w for w in caught if issubclass(w.category, ResourceWarning)]
    if left:
        print(f"\n{len(left)} unclosed socket(s) of finished tests collected at the end: {left[0].message}")


@pytest.fixture(scope="session", autouse=True)
def _close_session_clients() -> Iterator[None]:
    with closing_clients():
        yield


@pytest.fixture(scope="module", autouse=True)
def _close_module_clients() -> Iterator[None]:
    with closing_clients():
        yield


@pytest.fixture(autouse=True)
def _close_test_clients() -> Iterator[None]:
    with closing_clients():
        yield


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis-compatible server used only by this test run."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    with store_server(tmp_path_factory.mktemp("valkey")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The test server, emptied before the test."""
    flush(redis_server)
    return redis_server


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    client = connect(redis_url)
    try:
        yield Store(client)
    finally:
        await client.aclose()


@pytest.fixture
def output_dir() -> Path:
    path = Path(os.environ.get("TEST_OUTPUT_DIR", procs.ROOT / "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def web_process(redis_server: str, tmp_path_factory: pytest.TempPathFactory, name: str,
                env: dict[str, str] | None = None) -> Iterator[str]:
    """Base URL of a web process on the test server, with ``env`` on top (for a fixture to yield from)."""
    proc, port = procs.start_web(redis_server, auth_secret=TEST_SECRET, extra_env=env,
                                 log=tmp_path_factory.mktemp(name) / "web.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        procs.stop(proc)


@pytest.fixture(scope="session")
def web_server(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of one real uvicorn web process for the session."""
    yield from web_process(redis_server, tmp_path_factory, "web")


@pytest.fixture(scope="session")
def web_server_b(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second web process on the same Redis (for cross-process tests)."""
    yield from web_process(redis_server, tmp_path_factory, "web-b")


@pytest.fixture
def web(web_server: str, redis_url: str) -> str:
    """The session's web server, with an empty database."""
    return web_server


@pytest.fixture
def web_b(web_server_b: str, redis_url: str) -> str:
    return web_server_b


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for('ops', admin=True)}"}


def token_for(user_id: str, **kw: object) -> str:
    from threadline.shared.auth import mint

    return mint(TEST_SECRET, user_id, **kw)  # type: ignore[arg-type]
