"""The React hooks (/react.js) in real Chromium with React from npm (bundled by esbuild for the test
page, mapped by an import map: the hooks themselves need no build step): live threads, paginated
messages, optimistic sends, a streamed reply revealed smoothly, tool calls grouped into UI messages."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import itertools
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ROOT
from tests.support.stack import SECRET, Stack
from threadline import Threadline
from threadline.shared.auth import mint

HOOKS = Path(__file__).parent / "hooks"
STATIC = ROOT / "server" / "static"
NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def react_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (NODE_DIR / "node_modules" / "esbuild").exists():
        pytest.fail("tests/node's packages are needed: scripts/test installs them (npm ci)")
    out = tmp_path_factory.mktemp("react") / "react.js"
    # the entry on stdin: esbuild resolves its imports from the working directory (tests/node)
    done = subprocess.run([str(NODE_DIR / "node_modules" / ".bin" / "esbuild"), "--bundle", "--format=esm",
                           "--define:process.env.NODE_ENV=\"production\"", f"--outfile={out}"],
                          input=(HOOKS / "react_entry.mjs").read_text(), cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return out


async def seed(site: Stack, user: str, title: str, notes: list[str]) -> str:
    """A thread with ``notes`` saved (through the Python API: no rate limit, no replies)."""
    async with Threadline(site.settings()) as tl:
        thread = await tl.create_thread(user, title=title)
        for note in notes:
            await thread.save_message(note)
        return thread.thread_id


def in_thread(coro: Any) -> Any:
    """Run a coroutine to its end on its own loop (Playwright's sync API holds this thread's)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def hooks_origin(react_bundle: Path) -> Iterator[str]:
    """The test page's own origin on loopback: the page, React, and /client.js and /react.js as the
    server ships them (a page fulfilled by Playwright itself may not open sockets to loopback)."""
    files = {"/index.html": (HOOKS / "index.html", "text/html"), "/app.js": (HOOKS / "app.js", "text/javascript"),
             "/react-bundle.js": (react_bundle, "text/javascript"),
             "/client.js": (STATIC / "client.js", "text/javascript"), "/react.js": (STATIC / "react.js", "text/javascript")}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, kind = files.get(self.path.split("?")[0].split("#")[0], (None, ""))
            if path is None:
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooks_page(site: Stack, browser: Any, hooks_origin: str) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.close()
    assert not errors, errors


def open_page(page: Any, site: Stack, origin: str, user: str, thread_id: str) -> None:
    ws = site.web.replace("http", "ws") + "/ws"
    page.goto(f"{origin}/index.html#token={mint(SECRET, user)}&thread={thread_id}&ws={ws}")


def test_hooks_show_threads_pages_optimistic_sends_and_a_smoothly_revealed_reply(site: Stack, hooks_page: Any,
                                                                                  hooks_origin: str) -> None:
    who = "hooks-user"
    thread_id = in_thread(seed(site, who, "Hooks", [f"note {i}" for i in range(25)]))
    page = hooks_page
    open_page(page, site, hooks_origin, who, thread_id)
    page.wait_for_selector("[data-testid=conn]:has-text('open')")
    page.wait_for_selector("[data-testid=thread]:has-text('Hooks')")
    page.wait_for_selector("[data-testid=page-status]:has-text('CanLoadMore')")
    assert page.locator("[data-testid=ui-message]").count() == 10  # the first page
    page.click("[data-testid=more]")
    page.wait_for_selector("[data-testid=page-status]:has-text('Exhausted')")
    assert page.locator("[data-testid=ui-message]").count() == 25
    assert page.text_content("[data-testid=raw-count]") == "25"

    page.fill("[data-testid=prompt]", "hello hooks")
    page.click("[data-testid=send]")
    page.wait_for_selector("[data-testid=ui-message][data-role=assistant][data-streaming=true]", timeout=20_000)
    done = page.wait_for_selector("[data-testid=ui-message][data-role=assistant][data-status=success]"
                                  "[data-streaming=false]", timeout=30_000)
    full = done.get_attribute("data-full")
    page.wait_for_function("(full) => [...document.querySelectorAll('[data-testid=ui-text]')]"
                           ".some((el) => el.textContent === full)", arg=full, timeout=10_000)
    statuses = page.evaluate("window.__userStatuses['hello hooks']")
    assert statuses[0] == "sending" and statuses[-1] == "success"  # shown at once, then the server's copy
    assert page.locator("[data-testid=ui-message][data-role=user]:has-text('hello hooks')").count() == 1
    reveals = next(v for v in page.evaluate("Object.values(window.__reveals)") if v and v[-1][0] == len(full or ""))
    lengths = [n for n, _ in reveals]
    assert len([b for a, b in itertools.pairwise(lengths) if b > a]) >= 10, reveals  # revealed bit by bit
    # what was not shown yet when the stream ended came in several steps, not at once (each frame counts as
    # at most 100 ms, so a machine too busy to paint for a while cannot make one step of it either)
    rest = [n for n, streaming in reveals if not streaming]
    assert len(full or "") - rest[0] <= 12 or len([b for a, b in itertools.pairwise(rest) if b > a]) >= 2, reveals


def test_use_ui_messages_groups_a_tool_call_with_its_result_and_the_answer(site: Stack, hooks_page: Any,
                                                                           hooks_origin: str) -> None:
    who = "hooks-tools"
    thread_id = in_thread(seed(site, who, "Tools", []))
    page = hooks_page
    open_page(page, site, hooks_origin, who, thread_id)
    page.wait_for_selector("[data-testid=page-status]:has-text('Exhausted')")
    page.fill("[data-testid=prompt]", 'tool:get_weather {"city": "Paris"}')
    page.click("[data-testid=send-weather]")
    page.wait_for_selector("[data-testid=ui-tool][data-state=result]:has-text('get_weather')", timeout=20_000)
    # the answer's text, not only the call's step (saved as a success before the answer comes)
    page.wait_for_selector("[data-testid=ui-message][data-role=assistant][data-status=success]"
                           "[data-full*='[mock]']", timeout=30_000)
    assistants = page.locator("[data-testid=ui-message][data-role=assistant]")
    assert assistants.count() == 1  # the call, its result and the answer: one UI message
    assert "[mock]" in str(assistants.first.get_attribute("data-full"))


def test_use_presence_shows_who_is_here_and_who_types(site: Stack, hooks_page: Any, hooks_origin: str) -> None:
    """usePresence: the page's tab is present while mounted; staff typing in the thread shows."""
    import httpx

    who = "hooks-presence"
    thread_id = in_thread(seed(site, who, "Presence", []))
    page = hooks_page
    open_page(page, site, hooks_origin, who, thread_id)
    page.wait_for_selector(f"[data-testid=viewers]:has-text('{who}:1')", timeout=20_000)
    staff = {"Authorization": f"Bearer {mint(SECRET, 'ana', admin=True)}"}
    httpx.post(f"{site.web}/api/threads/{thread_id}/presence", json={"typing": True}, headers=staff)
    page.wait_for_selector("[data-testid=typists]:has-text('ana')", timeout=20_000)
    page.wait_for_selector("[data-testid=viewers]:has-text('ana:1')", timeout=20_000)
    page.type("[data-testid=prompt]", "hi", delay=30)  # its own typing reaches the server, not its own list
    listed = httpx.get(f"{site.web}/api/threads/{thread_id}/presence", headers=staff).json()
    deadline = 50
    while not any(v["userId"] == who and v["typing"] for v in listed["viewers"]) and deadline:
        page.wait_for_timeout(100)
        listed = httpx.get(f"{site.web}/api/threads/{thread_id}/presence", headers=staff).json()
        deadline -= 1
    assert any(v["userId"] == who and v["typing"] for v in listed["viewers"]), listed
    assert page.text_content("[data-testid=typists]") == "ana"


def test_use_branches_shows_an_edited_message_s_versions_and_switches(site: Stack, hooks_page: Any,
                                                                      hooks_origin: str) -> None:
    """useBranches over a message edited through the Python API (ThreadHandle.edit_message)."""
    who = "hooks-branches"

    async def edited() -> tuple[str, int]:
        async with Threadline(site.settings()) as tl:
            thread = await tl.create_thread(who, title="Branches")
            first = await thread.save_message("first")
            await thread.save_message("second")
            again = await thread.edit_message(first.message_id, "first, edited")
            assert [f.active.order for f in await thread.branches()] == [again.order]
            return thread.thread_id, again.order

    thread_id, order = in_thread(edited())
    assert order == 3
    page = hooks_page
    open_page(page, site, hooks_origin, who, thread_id)
    page.wait_for_selector("[data-testid=forks]:has-text('0:1,3*')", timeout=20_000)
    assert page.locator("[data-testid=ui-message]").all_text_contents() == ["first, edited"]
    page.click("[data-testid=first-version]")
    page.wait_for_selector("[data-testid=forks]:has-text('0:1*,3')", timeout=20_000)
    page.wait_for_selector("[data-testid=ui-message]:has-text('second')", timeout=20_000)
    assert "first, edited" not in " ".join(page.locator("[data-testid=ui-message]").all_text_contents())


def test_the_hooks_bundle_with_a_bundler_too() -> None:
    """What an app with a build step does: a bundler resolves react from node_modules and ./client.js beside."""
    entry = f'import * as hooks from "{STATIC / "react.js"}";\nexport default hooks;\n'
    done = subprocess.run([str(NODE_DIR / "node_modules" / ".bin" / "esbuild"), "--bundle", "--format=esm",
                           '--define:process.env.NODE_ENV="production"'],
                          input=entry, cwd=NODE_DIR, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")})  # the app's packages
    assert done.returncode == 0, done.stderr
    assert "function useUIMessages" in done.stdout and "SmoothText = class" in done.stdout
