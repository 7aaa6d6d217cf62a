"""Real Chromium (Debian's package) driven by Playwright against the whole stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium
from tests.support.stack import Stack, run_stack


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("site")
    env = {"APP_MODULE": "threadline.example", "LLM_BASE_URL": "", "MOCK_LLM_DELAY_MS": "40", "MOCK_LLM_WORDS": "60",
           "RATE_LIMIT_SENDS_PER_MINUTE": "30", "RATE_LIMIT_BURST": "3", "DATA_DIR": str(tmp / "data")}
    with run_stack(tmp, webs=2, workers=3, env=env, index=True) as stack:
        yield stack


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def shots(output_dir: Path) -> Path:
    path = output_dir / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
