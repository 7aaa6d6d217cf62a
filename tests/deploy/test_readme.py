"""README's complete Python programs run as written (against real processes)."""

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


def python_blocks() -> list[str]:
    """Indented code blocks of README.md that are Python (they start with an import)."""
    text = (procs.ROOT / "README.md").read_text()
    blocks = [textwrap.dedent(b) for b in re.findall(r"\n\n((?:(?:    .*)?\n)+)", text)]
    return [b for b in blocks if b.lstrip().startswith(("import ", "from ")) and "import {" not in b]


def programs() -> list[str]:
    """The README's whole programs (they call asyncio.run)."""
    return [b for b in python_blocks() if "asyncio.run(" in b]


def test_every_other_python_block_runs_as_an_app_module() -> None:
    modules = [b for b in python_blocks() if "asyncio.run(" not in b]
    assert len(modules) >= 2  # the agents and the providers examples
    for source in modules:
        namespace: dict[str, object] = {"__name__": "readme_snippet"}
        exec(compile(source, "README.md", "exec"), namespace)  # our own README
        assert namespace.get("AGENTS"), source[:80]


@pytest.fixture(scope="module")
def web_for_snippets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("readme")
    valkey, rport = procs.start_valkey(tmp / "valkey")
    redis_url = f"redis://127.0.0.1:{rport}/0"
    web, port = procs.start_web(redis_url, auth_secret=TEST_SECRET, log=tmp / "web.log")
    try:
        yield redis_url, port
    finally:
        procs.stop(web)
        procs.stop(valkey)


def test_readme_has_the_programs_it_promises() -> None:
    assert len(programs()) >= 2


@pytest.mark.parametrize("index", range(2))
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
