"""Real Chromium (Debian's package) driven by Playwright against the whole stack."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, run_stack

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("site")
    env = {"APP_MODULE": "threadline.example", "LLM_BASE_URL": "", "MOCK_LLM_DELAY_MS": "40", "MOCK_LLM_WORDS": "60",
           "RATE_LIMIT_SENDS_PER_MINUTE": "30", "RATE_LIMIT_BURST": "3", "DATA_DIR": str(tmp / "data")}
    with run_stack(tmp, webs=2, workers=3, env=env, index=True) as stack:
        yield stack


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: scripts/test installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(output_dir: Path) -> Path:
    path = output_dir / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
