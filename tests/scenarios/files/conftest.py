"""Stacks whose files live in a directory (DATA_DIR/files) or in a bucket on a real S3-compatible server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.s3 import s3_server
from tests.support.stack import Stack, run_stack


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
