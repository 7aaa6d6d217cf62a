"""A real S3-compatible server for tests: moto's server mode, as its own process on loopback."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import procs

BUCKET = "threadline-files"
S3_ENV = {"FILES_S3_REGION": "us-east-1", "FILES_S3_ACCESS_KEY_ID": "test", "FILES_S3_SECRET_ACCESS_KEY": "test"}


@contextlib.contextmanager
def s3_server(log: Path) -> Iterator[dict[str, str]]:
    """Settings (environment) of a bucket on a fresh S3 server."""
    def spawn(port: int) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                    cwd=procs.ROOT, env=procs.child_env(), stdout=out, stderr=subprocess.STDOUT)
    proc, port = procs.start_listening(spawn)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        httpx.put(f"{endpoint}/{BUCKET}").raise_for_status()
        yield {"FILES_BUCKET": f"s3://{BUCKET}/uploads", "FILES_S3_ENDPOINT": endpoint, **S3_ENV}
    finally:
        procs.stop(proc)
