"""First run as a new user: the launcher without AUTH_SECRET, and the chat page signs in by itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_launch import interrupt, wait_healthy
from tests.support.procs import ROOT, child_env
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.any_store  # (the launcher starts a store of its own: the same in the cluster pass)


def test_the_chat_page_of_a_dev_mode_run_signs_in_by_itself_and_answers(browser: Any, tmp_path: Path,
                                                                        shots: Path) -> None:
    port = free_port()
    env = child_env(DATA_DIR=str(tmp_path / "data"), PORT=str(port), MOCK_LLM_DELAY_MS="5", MOCK_LLM_WORDS="6")
    for name in ("AUTH_SECRET", "REDIS_URL", "RQ_REDIS_URL", "LLM_BASE_URL", "APP_MODULE"):
        env.pop(name, None)
    with open(tmp_path / "launch.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "threadline.server.launch"], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, path="/readyz")
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(f"{base}/")  # no token anywhere: dev mode signs in as `dev`
        page.wait_for_selector("[data-testid=conn][data-status=open]", timeout=20_000)
        page.click("[data-testid=new-thread]")
        page.wait_for_selector("[data-testid=thread].selected")
        page.fill("[data-testid=prompt]", "hello from a first run")
        page.press("[data-testid=prompt]", "Enter")
        # the reply is revealed smoothly: read it once the page has shown all of it
        sel = ("[data-testid=message][data-role=assistant][data-status=success] "
               "[data-testid=text]:not([data-revealing=true])")
        page.wait_for_selector(sel, timeout=30_000)
        page.wait_for_function("""(sel) => {
            const all = document.querySelectorAll(sel);
            return all.length > 0 && all[all.length - 1].textContent.startsWith("[mock]");
        }""", arg=sel, timeout=30_000)
        page.screenshot(path=str(shots / "first-run.png"))
        page.close()
    finally:
        interrupt(proc)
