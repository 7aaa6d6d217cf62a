from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, run_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Valkey, the scripted LLM, two web processes and a pool of generation workers."""
    with run_stack(tmp_path_factory.mktemp("stack"), webs=2, workers=3) as s:
        yield s


@pytest.fixture
def llm(stack: Stack) -> Stack:
    stack.reset_llm()
    return stack
