"""A web app as a user builds one, on its own origin: a Vite + React app that installs the packed
npm packages (@threadline/client, @threadline/react: ``npm pack`` of npm/), signs its user in with
the app's identity provider (a JWKS served on loopback), and talks to a stack that lists the app's
origin in CORS_ORIGINS. In real Chromium: useChat on a chat id the AI SDK made up, a streamed reply,
a reload that shows the history; then the same with the hooks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from tests.support import procs
from tests.support.idp import Provider, serve_provider
from tests.support.npm import npm_pack
from tests.support.procs import ROOT
from tests.support.stack import Stack, run_stack
from threadline.shared.storage.embedded import free_port

APP = ROOT / "tests" / "node" / "vite-app"
SOURCES = ("package.json", "package-lock.json", "index.html", "vite.config.js", "src")
# every status the app's chat goes through, however briefly (the test's own, not the app's)
WATCH_STATUS = """
window.__statuses = [];
new MutationObserver((records) => records.forEach((r) => {
  const status = r.target.getAttribute && r.target.getAttribute("data-status");
  if (status && window.__statuses.at(-1) !== status) window.__statuses.push(status);
})).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
"""


@pytest.fixture(scope="module")
def app_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app built against the tarballs, in a folder of its own as a user's project is."""
    if not (APP / "node_modules" / "vite").exists():
        pytest.fail("tests/node/vite-app's packages are needed: scripts/test installs them (npm ci)")
    tmp = tmp_path_factory.mktemp("vite")
    tarballs = npm_pack(tmp / "tarballs")
    app = tmp / "app"
    app.mkdir()
    for name in SOURCES:
        (shutil.copytree if (APP / name).is_dir() else shutil.copy)(APP / name, app / name)
    # the lock's packages come from npm's cache (scripts/test's npm ci filled it), the tarballs from disk
    for step in (["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", *map(str, tarballs)],
                 [str(app / "node_modules" / ".bin" / "vite"), "build"]):
        done = subprocess.run(step, cwd=app, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{step[:2]}: {done.stdout}\n{done.stderr}"
    return app / "dist"


@pytest.fixture(scope="module")
def app_origin(app_dist: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(app_dist)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        procs.wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        procs.stop(proc)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with serve_provider(tmp_path_factory.mktemp("idp")) as idp:
        yield idp


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory, provider: Provider, app_origin: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("backend")
    env = {**provider.env(), "CORS_ORIGINS": app_origin, "APP_MODULE": "threadline.example", "LLM_BASE_URL": "",
           "MOCK_LLM_DELAY_MS": "20", "MOCK_LLM_WORDS": "30"}
    with run_stack(tmp, env=env) as stack:
        yield stack


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: print("console:", m.type, m.text))  # shown when a test fails
    page.add_init_script(WATCH_STATUS)
    yield page
    page.close()
    assert not errors, errors


def send(page: Any, text: str) -> str:
    """Sends ``text`` and waits for the whole streamed answer; returns it."""
    page.evaluate("window.__statuses.length = 0")  # before the send: its statuses may come at once
    page.fill("input[aria-label=message]", text)
    page.click("button[type=submit]")
    page.wait_for_selector(f"li[data-role=user]:has-text('{text}')")
    answer = page.wait_for_selector("main[data-status=ready] li[data-role=assistant]:has-text('[mock]')",
                                    timeout=30_000)
    assert "streaming" in page.evaluate("window.__statuses")  # the reply came in pieces
    return str(answer.text_content())


def shown(page: Any) -> list[tuple[str, str]]:
    return [(str(li.get_attribute("data-role")), str(li.text_content())) for li in page.query_selector_all("li")]


def test_use_chat_on_a_new_chat_id_streams_and_a_reload_shows_the_history(
        page: Any, app_origin: str, backend: Stack, provider: Provider) -> None:
    token = provider.token("ec-1", sub="vite-user")
    page.goto(f"{app_origin}/?{urlencode({'server': backend.web, 'token': token, 'mode': 'chat'})}")
    page.wait_for_selector("main[data-status=ready]")
    answer = send(page, "hello from vite")
    chat_id = parse_qs(urlparse(page.url).query)["chat"][0]  # useChat's own generated id
    mine = httpx.get(f"{backend.web}/api/threads", headers={"Authorization": f"Bearer {token}"}).json()
    assert chat_id in [t["threadId"] for t in mine["page"]]  # the first send made the thread, the user's own
    before = shown(page)
    assert before == [("user", "hello from vite"), ("assistant", answer)]

    page.reload()
    page.wait_for_selector(f"li[data-role=assistant]:has-text('{answer[:20]}')", timeout=20_000)
    assert shown(page) == before
    assert send(page, "and again") != ""  # the chat goes on after the reload
    assert [role for role, _ in shown(page)] == ["user", "assistant", "user", "assistant"]


def test_the_hooks_stream_a_reply_and_a_reload_shows_the_history(
        page: Any, app_origin: str, backend: Stack, provider: Provider) -> None:
    token = provider.token("rsa-1", sub="vite-hooks-user")
    page.goto(f"{app_origin}/?{urlencode({'server': backend.web, 'token': token, 'mode': 'hooks'})}")
    page.wait_for_selector("main[data-status=ready]", timeout=20_000)
    answer = send(page, "hello hooks")
    assert parse_qs(urlparse(page.url).query)["thread"]
    before = shown(page)
    assert before == [("user", "hello hooks"), ("assistant", answer)]

    page.reload()
    page.wait_for_selector(f"li[data-role=assistant]:has-text('{answer[:20]}')", timeout=20_000)
    assert shown(page) == before
