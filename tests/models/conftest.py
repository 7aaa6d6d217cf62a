"""Real model servers, as processes: llama-cpp-python's OpenAI-compatible server and llama.cpp's own
llama-server, serving Gemma 3 270M (scripts/model-servers builds them once from PyPI packages and
keeps them; scripts/test runs it first), each behind a whole stack."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import procs
from tests.support.procs import ROOT
from tests.support.stack import Stack, run_stack
from threadline.shared.storage.embedded import free_port

MODEL = "gemma-3-270m"  # the name both servers answer to (the agents' LLM_MODEL)
TOKEN_LIMIT = {"name": "daily-tokens", "on": "tokens", "kind": "fixed_window", "limit": 100000, "periodS": 86400,
               "per": "user"}  # a window: nothing flows back while the test reads it
SERVERS = ("llama-cpp-python", "llama-server")


@pytest.fixture(scope="session")
def built() -> dict[str, str]:
    """Where the servers and the model are (THREADLINE_MODEL_SERVERS names the file; otherwise
    scripts/model-servers is asked, which builds them if this machine has none yet)."""
    path = os.environ.get("THREADLINE_MODEL_SERVERS")
    if not path:
        done = subprocess.run([str(ROOT / "scripts" / "model-servers")], capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr[-3000:]
        path = done.stdout.strip().splitlines()[-1]
    pairs = [line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line]
    return {key: value for key, value in pairs}


def command(server: str, built: dict[str, str], port: int, *, embeddings: bool = False) -> list[str]:
    """argv of ``server`` on ``port``; ``embeddings``: an instance that serves /v1/embeddings (both
    servers give a model's embeddings from an instance of their own)."""
    if server == "llama-cpp-python":
        argv = [built["LLAMA_CPP_PYTHON"], "-m", "llama_cpp.server", "--model", built["LLAMA_MODEL"],
                "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
                "--n_threads", "2"]
        return argv + (["--embedding", "true"] if embeddings else [])
    argv = [built["LLAMA_SERVER"], "-m", built["LLAMA_MODEL"], "--alias", MODEL, "--host", "127.0.0.1",
            "--port", str(port), "-t", "2"]
    return argv + (["--embeddings", "--pooling", "mean"] if embeddings else ["-c", "16384", "-np", "4", "--jinja"])


def start(server: str, built: dict[str, str], log: Path, *,
          embeddings: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """The server, once it answers with its model loaded."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(command(server, built, port, embeddings=embeddings), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/v1/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.25)


@pytest.fixture(scope="package", params=SERVERS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="package")
def model_server(server_kind: str, built: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running server (its OpenAI-compatible API under /v1)."""
    proc, base = start(server_kind, built, tmp_path_factory.mktemp(server_kind) / "server.log")
    try:
        yield base
    finally:
        procs.stop(proc)


@pytest.fixture(scope="package")
def local(model_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose agents talk to the real server."""
    env = {"LLM_BASE_URL": f"{model_server}/v1", "LLM_MODEL": MODEL, "LLM_TIMEOUT_S": "300",
           "STREAM_STALE_MS": "15000", "RATE_LIMITS": json.dumps([TOKEN_LIMIT])}
    with run_stack(tmp_path_factory.mktemp("local"), env=env) as stack:
        yield stack
