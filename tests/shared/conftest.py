"""The tests of shared/ run on both engines the product claims: the bundled Valkey and Debian's Redis
7 (redis-server, which scripts/test installs), each started here on a free port. "Any Redis" is
checked, not assumed. With THREADLINE_TEST_CLUSTER (tests/support/store.py), on a local cluster of the
bundled Valkey instead."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support import procs
from tests.support.store import CLUSTER, store_server
from threadline.shared.storage import embedded

REDIS_SERVER = "/usr/bin/redis-server"


@pytest.fixture(scope="package", params=["valkey-cluster"] if CLUSTER else ["valkey", "redis7"])
def redis_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(request.param)
    if CLUSTER:
        with store_server(folder) as url:
            yield url
        return
    argv = embedded.command(embedded.free_port(), folder, persist=False)
    if request.param == "redis7":
        if shutil.which(REDIS_SERVER) is None:
            pytest.fail("Debian's redis-server is not installed: scripts/test installs it (apt-get install redis-server)")
        version = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True).stdout
        assert "v=7." in version, version
        argv[0] = REDIS_SERVER
    port = int(argv[argv.index("--port") + 1])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        procs.wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        procs.stop(proc)
