"""The documentation's code runs as written (against real processes): README.md and docs/*.md.
The quickstart's own blocks are run by test_quickstart.py."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET, token_for
from tests.support import procs


def documentation() -> str:
    return "\n\n".join(p.read_text() for p in [procs.ROOT / "README.md", *sorted((procs.ROOT / "docs").glob("*.md"))])


def python_blocks() -> list[str]:
    """Indented code blocks of the documentation that are Python (they start with an import)."""
    text = documentation()
    blocks = [textwrap.dedent(b) for b in re.findall(r"\n\n((?:(?:    .*)?\n)+)", text)]
    return [b for b in blocks if b.lstrip().startswith(("import ", "from ")) and "import {" not in b]


def programs() -> list[str]:
    """The README's whole programs (they call asyncio.run)."""
    return [b for b in python_blocks() if "asyncio.run(" in b]


def test_every_other_python_block_runs_as_an_app_module() -> None:
    modules = [b for b in python_blocks() if "asyncio.run(" not in b and ("AGENTS" in b or "WORKFLOWS" in b)]
    assert len(modules) >= 4  # the quickstart's, the agents, the providers and the workflows examples
    for source in modules:
        namespace: dict[str, object] = {"__name__": "readme_snippet"}
        exec(compile(source, "README.md", "exec"), namespace)  # our own README
        assert namespace.get("AGENTS") or namespace.get("WORKFLOWS"), source[:80]


@pytest.fixture(scope="module")
def web_for_snippets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("readme")
    valkey, rport = procs.start_valkey(tmp / "valkey")
    redis_url = f"redis://127.0.0.1:{rport}/0"
    web, port = procs.start_web(redis_url, auth_secret=TEST_SECRET, log=tmp / "web.log")
    env = procs.child_env(REDIS_URL=redis_url, WORKERS="1", MOCK_LLM_DELAY_MS="1", MOCK_LLM_WORDS="8",
                          DATA_DIR=str(tmp / "data"))
    for name in ("LLM_BASE_URL", "APP_MODULE"):  # the example app with the mock model
        env.pop(name, None)
    with open(tmp / "worker.log", "ab") as out:  # the workflows program needs a worker to run its steps
        worker = subprocess.Popen([sys.executable, "-m", "threadline.workers", "generation"], cwd=procs.ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield redis_url, port
    finally:
        procs.stop(worker)
        procs.stop(web)
        procs.stop(valkey)


def test_readme_has_the_programs_it_promises() -> None:
    assert len(programs()) == 4


@pytest.mark.parametrize("index", range(4))
def test_each_readme_program_runs(index: int, web_for_snippets: tuple[str, int], tmp_path: Path) -> None:
    redis_url, port = web_for_snippets
    source = programs()[index]
    script = tmp_path / "snippet.py"
    script.write_text(source)
    env = procs.child_env(REDIS_URL=redis_url, TOKEN=token_for("alice"), THREADLINE_WS=f"ws://127.0.0.1:{port}/ws",
                          MOCK_LLM_DELAY_MS="1", MOCK_LLM_WORDS="8", DATA_DIR=str(tmp_path / "data"))
    env.pop("LLM_BASE_URL", None)
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def shell_blocks() -> list[list[str]]:
    """The documentation's shell command blocks, as lists of commands (comments dropped, continuations joined)."""
    text = documentation()
    out = []
    for block in re.findall(r"\n\n((?:(?:    .*)?\n)+)", text):
        body = textwrap.dedent(block).replace("\\\n", " ")
        lines = [re.sub(r"\s+#.*$", "", line).strip() for line in body.splitlines() if line.strip()]
        if lines and re.match(r"^(scripts/|\.venv/bin/|curl )", lines[0]):
            out.append(lines)
    return out


@pytest.mark.timeout(300)
def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    """scripts/run, the token commands and the curl lines, in order (the port is a free one, not 8000)."""
    import json
    import os
    import signal
    import time

    import httpx

    from threadline.shared.storage.embedded import free_port

    blocks = shell_blocks()
    flat = [cmd for block in blocks for cmd in block]
    assert "scripts/run" in flat and "scripts/test" in flat
    port = free_port()
    env = procs.child_env(DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    for name in ("AUTH_SECRET", "REDIS_URL", "LLM_BASE_URL", "APP_MODULE"):
        env.pop(name, None)
    with open(tmp_path / "run.log", "ab") as out:
        run = subprocess.Popen(["bash", "-c", "scripts/run"], cwd=procs.ROOT, env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 200  # a first scripts/run may install the base dependencies
        while True:
            assert run.poll() is None, (tmp_path / "run.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        tokens = [cmd for cmd in flat if "threadline token " in cmd]
        assert len(tokens) == 2
        minted = [subprocess.run(["bash", "-c", cmd], cwd=procs.ROOT, env=env, capture_output=True, text=True,
                                 check=True).stdout.strip() for cmd in tokens]
        env["TOKEN"] = minted[0]
        curls = [cmd.replace("localhost:8000", f"127.0.0.1:{port}") for cmd in flat if cmd.startswith("curl ")]
        assert len(curls) == 6
        # threads first, then the documents, then the files
        curls = sorted(curls, key=lambda c: ("/api/files" in c or "$FILE" in c, "/api/rag/" in c, "/search" in c,
                                             "/messages" in c))
        made = subprocess.run(["bash", "-c", curls[0]], env=env, capture_output=True, text=True, check=True)
        env["TID"] = json.loads(made.stdout)["threadId"]
        sent = subprocess.run(["bash", "-c", curls[1]], env=env, capture_output=True, text=True, check=True)
        assert json.loads(sent.stdout)["order"] == 1
        uploaded = subprocess.run(["bash", "-c", curls[4]], env=env, capture_output=True, text=True, check=True)
        upload = json.loads(uploaded.stdout)
        assert upload["mediaType"] == "text/plain" and upload["name"] == "packing.txt", uploaded.stdout
        env["FILE"] = upload["fileId"]
        with_file = subprocess.run(["bash", "-c", curls[5]], env=env, capture_output=True, text=True, check=True)
        assert json.loads(with_file.stdout)["order"] == 2, with_file.stdout
        added = subprocess.run(["bash", "-c", curls[2]], env=env, capture_output=True, text=True, check=True)
        assert json.loads(added.stdout)["status"] == "pending", added.stdout
        deadline = time.monotonic() + 30  # the index process chunks and embeds it
        while True:
            found = subprocess.run(["bash", "-c", curls[3]], env=env, capture_output=True, text=True, check=True)
            results = json.loads(found.stdout)["results"]
            if results:
                assert results[0]["key"] == "handbook.md" and "foghorn" in results[0]["text"]
                break
            assert time.monotonic() < deadline, found.stdout
            time.sleep(0.2)
        admin = httpx.get(f"http://127.0.0.1:{port}/api/stats", headers={"Authorization": f"Bearer {minted[1]}"})
        assert admin.status_code == 200  # the --admin token has the admin claim
    finally:
        os.killpg(run.pid, signal.SIGINT)
        try:
            run.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)


SMALL = {"BENCH_RUNS": "5", "BENCH_CONCURRENT": "3", "BENCH_WATCHERS": "2", "BENCH_SIZES": "10", "BENCH_WORDS": "10",
         "BENCH_MESSAGES": "200", "BENCH_SEARCHES": "10", "BENCH_SUBSCRIBERS": "20", "BENCH_IDLE": "20",
         "BENCH_ROUNDS": "5", "BENCH_POINTS": "300", "BENCH_CHECKS": "100", "BENCH_STEPS": "3", "BENCH_LONG": "1000",
         "BENCH_PEER_SIZES": "20"}


@pytest.mark.timeout(900)
def test_readme_bench_commands_run_as_written_at_small_sizes() -> None:
    """Each benchmark command of the README runs (with its documented size knobs turned down)."""
    benches = [cmd for block in shell_blocks() for cmd in block if "-m bench." in cmd]
    assert len(benches) >= 5
    env = procs.child_env(**SMALL)
    for name in ("REDIS_URL", "LLM_BASE_URL", "APP_MODULE", "AUTH_SECRET"):
        env.pop(name, None)
    for cmd in benches:
        done = subprocess.run(["bash", "-c", cmd], cwd=procs.ROOT, env=env, capture_output=True, text=True,
                              timeout=400)
        if done.returncode:  # (whole in the report: an assertion's message is cut short)
            print(cmd, done.stdout[-4000:], done.stderr[-12000:], sep="\n")
        assert done.returncode == 0, (cmd, done.stdout[-1500:], done.stderr[-1500:])
        assert re.search(r"\d", done.stdout), cmd  # it printed figures
