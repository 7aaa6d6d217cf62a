"""The README's quickstart, followed top to bottom as a newcomer does, with the wheel installed
outside the repository: its agent module and .env in a folder of their own (OpenAI's address
swapped for a scripted server on loopback), `threadline dev` run there, a token minted as the
quickstart mints it, a prompt answered through the agent's tool; the useChat code is the code of
the Vite app the browser tests build; the Dockerfile lines fit the image."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import procs
from tests.support.procs import ROOT
from tests.support.replies import replied
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.any_store  # (its own store, or none: the same on a cluster)

OPENAI = "https://api.openai.com/v1"


def quickstart_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(b).strip("\n") + "\n" for b in re.findall(r"\n\n((?:(?: {4}.*)?\n)+)", section)]


BLOCKS = quickstart_blocks()
COMMANDS, MODULE, DOTENV, MINT, JSX, DOCKERFILE, NGINX = BLOCKS


def test_the_quickstart_has_the_steps_it_promises() -> None:
    assert len(BLOCKS) == 7
    assert COMMANDS.splitlines()[-1] == "threadline dev"
    assert "AGENTS = [" in MODULE and "APP_MODULE=myagents" in DOTENV and f"LLM_BASE_URL={OPENAI}" in DOTENV


@pytest.fixture
def llm(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with open(tmp_path / "llm.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.fake_llm"], cwd=ROOT,
                                env=procs.child_env(PORT=str(port)), stdout=out, stderr=subprocess.STDOUT)
    try:
        procs.wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        procs.stop(proc)


@pytest.mark.timeout(240)
def test_an_agent_of_your_own_answers_through_its_tool(installed: Path, llm: str, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "myagents.py").write_text(MODULE)
    (app / ".env").write_text(DOTENV.replace(OPENAI, f"{llm}/v1"))
    httpx.post(f"{llm}/_script", json={"responses": [
        {"kind": "tools", "calls": [{"name": "order_status", "arguments": '{"order_id": "A-17"}'}]},
        {"kind": "text", "chunks": ["Order A-17 ", "has shipped ", "with DHL."]},
    ]}).raise_for_status()
    secret = "quickstart-secret-0123456789abcdef0123"
    port = free_port()
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "AUTH_SECRET": secret, "PORT": str(port), "WORKERS": "1"}
    minted = subprocess.run([installed / "bin" / "python", "-c", MINT + "\nprint(token)"], cwd=app, env=env,
                            capture_output=True, text=True)
    assert minted.returncode == 0, minted.stderr
    auth = {"Authorization": f"Bearer {minted.stdout.strip()}"}
    with open(tmp_path / "dev.log", "ab") as out:
        dev = subprocess.Popen(["bash", "-c", COMMANDS.splitlines()[-1]], cwd=app, env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        procs.wait_for_port(port, dev, timeout=60)
        base = f"http://127.0.0.1:{port}"
        tid = httpx.post(f"{base}/api/threads", json={}, headers=auth).json()["threadId"]
        sent = httpx.post(f"{base}/api/threads/{tid}/messages", json={"prompt": "Where is my order A-17?"},
                          headers=auth)
        assert sent.status_code == 201, sent.text
        page = replied(base, tid, auth, tmp_path / "dev.log")
        results = [p["result"] for m in page for p in m["parts"] if p["type"] == "tool-result"]
        assert results == [{"order": "A-17", "status": "shipped", "carrier": "DHL"}]
        answer = page[-1]
        assert (answer["status"], answer["agentName"], answer["text"]) == ("success", "support",
                                                                         "Order A-17 has shipped with DHL.")
        calls = httpx.get(f"{llm}/_requests").json()
        assert {c["model"] for c in calls} == {"gpt-4o-mini"}  # from .env
        assert {c["_headers"]["authorization"] for c in calls} == {"Bearer sk-your-key"}
    finally:
        procs.stop(dev)


def test_the_use_chat_code_is_the_code_of_the_app_the_browser_tests_build() -> None:
    app = {line.strip() for line in (ROOT / "tests/node/vite-app/src/main.jsx").read_text().splitlines()}
    code = [line.strip() for line in JSX.splitlines() if line.strip() and not line.strip().startswith("//")]
    assert len(code) > 15
    assert [line for line in code if line not in app] == []


def test_the_dockerfile_lines_fit_the_image() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert DOCKERFILE.splitlines() == [f"FROM threadline:{version}", "COPY myagents.py .", "ENV APP_MODULE=myagents"]
    image = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^WORKDIR (.+)$", image, re.M)[-1] == "/home/threadline"  # COPY . lands where it runs
    assert 'CMD ["threadline", "web"]' in image
