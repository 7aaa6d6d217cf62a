"""The production shape: the built wheel, installed outside the repository by pip, holds one name
(threadline); its command runs beside an app that has its own server package, answers through the
app's agent and tool, and its chat page renders markdown in Chromium."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support import procs
from tests.support.browser import chromium
from tests.support.replies import replied
from threadline.shared.auth import mint, verify
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.any_store  # (its own store, or none: the same on a cluster)

SECRET = "wheel-secret-0123456789abcdef0123456789"


def test_the_wheel_holds_one_name_with_its_scripts_and_pages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"threadline"}  # no server, shared or workers beside an app's own
    for linked in ("shared", "server", "workers"):
        assert {n for n in names if n.startswith(f"threadline/{linked}/") and n.endswith(".py")} == \
            {f"threadline/{p.relative_to(procs.ROOT)}" for p in (procs.ROOT / linked).rglob("*.py")}
    lua = {Path(n).name for n in names if n.startswith("threadline/shared/threads/lua/")}
    assert lua == {p.name for p in (procs.ROOT / "shared/threads/lua").glob("*.lua")}
    static = {n.removeprefix("threadline/server/static/") for n in names if n.startswith("threadline/server/static/")}
    assert static == {str(p.relative_to(procs.ROOT / "server/static"))
                      for p in (procs.ROOT / "server/static").rglob("*") if p.is_file()}  # vendor/ too
    assert "threadline/py.typed" in names
    meta = zipfile.ZipFile(wheel)
    dist = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in meta.read(dist).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry = meta.read(dist.replace("METADATA", "entry_points.txt")).decode()
    assert "threadline = threadline.cli:main" in entry


def test_the_command_reads_a_dot_env_without_overriding_the_environment(tmp_path: Path) -> None:
    env_file_secret, real_secret = "dotenv-secret-" + "x" * 32, "real-secret-" + "y" * 32
    (tmp_path / ".env").write_text(f'# the app\'s settings\nexport AUTH_SECRET="{env_file_secret}"\n')
    env = procs.child_env()
    env.pop("AUTH_SECRET", None)

    def token(**extra: str) -> str:
        out = subprocess.run([sys.executable, "-m", "threadline", "token", "alice"], cwd=tmp_path,
                             env={**env, **extra}, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert verify(env_file_secret, token()).user_id == "alice"  # from .env
    assert verify(real_secret, token(AUTH_SECRET=real_secret)).user_id == "alice"  # the environment wins
    refused = subprocess.run([sys.executable, "-m", "threadline", "nope"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "threadline dev" in refused.stderr


APP_MODULE = '''"""An app's own agents, beside its own server package."""
import msgspec

from server.words import shout  # the app's own package named server
from threadline import Agent, ToolContext, tool


class ShoutArgs(msgspec.Struct):
    text: str


@tool("Say a text loudly")
def loud(ctx: ToolContext, args: ShoutArgs) -> str:
    return shout(args.text)


AGENTS = [Agent(name="crier", instructions="You shout.", tools=[loud], max_steps=3)]
'''

MARKDOWN = "## Steps\n\n1. **Open** the file\n2. Read it\n\n```python\nprint(open('a').read())\n```\n"
SAVE_REPLY = """
import asyncio, sys
from threadline import Threadline

async def main():
    async with Threadline.from_env() as tl:
        thread = await tl.create_thread("alice", title="Markdown")
        prompt = await thread.save_message("How?")
        await thread.save_message(sys.argv[1], role="assistant", agent_name="crier",
                                  prompt_message_id=prompt.message_id)
        print(thread.thread_id)

asyncio.run(main())
"""


@pytest.mark.timeout(240)
def test_the_installed_command_runs_beside_an_app_with_its_own_server_package(installed: Path,
                                                                               tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "server").mkdir(parents=True)
    (app / "server" / "__init__.py").write_text("")
    (app / "server" / "words.py").write_text("def shout(text: str) -> str:\n    return text.upper() + '!'\n")
    (app / "crier.py").write_text(APP_MODULE)
    py = installed / "bin" / "python"
    check = subprocess.run([py, "-c", "import server.words, threadline.server.app, threadline;"
                                      "print(server.words.__file__); print(threadline.__file__)"],
                           cwd=app, capture_output=True, text=True, check=True)
    own, ours = check.stdout.split()
    assert own.startswith(str(app)) and ours.startswith(str(installed))  # each its own, neither the repo's
    port = free_port()
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "AUTH_SECRET": SECRET, "PORT": str(port),
           "DATA_DIR": str(app / "data"), "APP_MODULE": "crier", "MOCK_LLM_DELAY_MS": "1", "WORKERS": "1",
           "RATE_LIMIT_SENDS_PER_MINUTE": "0"}  # no REDIS_URL: the embedded Valkey
    with open(tmp_path / "dev.log", "ab") as out:
        dev = subprocess.Popen(["threadline", "dev"], cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        procs.wait_for_port(port, dev, timeout=60)
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {mint(SECRET, 'alice')}"}
        tid = httpx.post(f"{base}/api/threads", json={}, headers=auth).json()["threadId"]
        sent = httpx.post(f"{base}/api/threads/{tid}/messages", headers=auth,
                          json={"prompt": 'tool:loud {"text": "hello"}', "agentName": "crier"})
        assert sent.status_code == 201, sent.text
        page = replied(base, tid, auth, tmp_path / "dev.log")
        results = [p for m in page for p in m["parts"] if p["type"] == "tool-result"]
        assert [r["result"] for r in results] == ["HELLO!"]  # the app's tool, through its own server package
        reply = page[-1]
        assert (reply["status"], reply["agentName"]) == ("success", "crier") and reply["text"].startswith("[mock]")

        # the chat page as installed renders markdown (marked and DOMPurify from static/vendor)
        saved = subprocess.run([py, "-c", SAVE_REPLY, MARKDOWN], cwd=app, capture_output=True, text=True,
                               env={**env, "DATA_DIR": str(app / "data")})  # finds the embedded Valkey there
        assert saved.returncode == 0, saved.stderr
        thread_id = saved.stdout.strip()
        with chromium() as browser:
            tab = browser.new_page()
            tab.goto(f"{base}/#token={mint(SECRET, 'alice')}&thread={thread_id}")
            reply_text = tab.wait_for_selector("[data-testid=message][data-role=assistant] h2", timeout=20_000)
            assert reply_text.text_content() == "Steps"
            body = tab.locator("[data-testid=message][data-role=assistant]")
            assert body.locator("ol li strong").text_content() == "Open"
            assert body.locator(".code pre code").text_content().startswith("print(open(")
    finally:
        procs.stop(dev)
