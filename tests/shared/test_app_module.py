"""Every declaration of the app module is read by one loader and fails the same way when wrong."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from threadline.shared.agents import load_agents
from threadline.shared.app_module import AppModuleError
from threadline.shared.config import Settings
from threadline.shared.errors import ConfigError
from threadline.shared.llm.providers import providers
from threadline.shared.usage.ledger import prices_of
from threadline.shared.usage.limits import rules_of
from threadline.shared.workflows.definition import load_workflows

_counter = iter(range(1_000_000))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Write an app module with the given body; its importable name."""
    sys.path.insert(0, str(tmp_path))

    def write(body: str) -> str:
        name = f"tl_app_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        return name

    yield write
    sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(("body", "read"), [
    ("AGENTS = [1]", lambda m: load_agents(m)),
    ("x = 1", lambda m: load_agents(m)),  # no agents at all
    ("WORKFLOWS = ['w']", lambda m: load_workflows(m)),
    ("RATE_LIMITS = [{'name': 'x'}]", lambda m: rules_of(Settings(app_module=m))),
    ("PRICES = {'gpt': 1.0}", lambda m: prices_of(m)),
    ("PRICES = [1]", lambda m: prices_of(m)),
    ("PROVIDERS = 'openai'", lambda m: providers(Settings(app_module=m))),
])
def test_a_malformed_declaration_is_one_config_error_naming_it(
        app: Callable[[str], str], body: str, read: Callable[[str], object]) -> None:
    name = app(body)
    with pytest.raises(AppModuleError) as caught:
        read(name)
    assert name in str(caught.value)
    assert isinstance(caught.value, ConfigError)  # stops start-up, never reaches a client


def test_a_module_that_cannot_be_imported_is_the_same_error() -> None:
    with pytest.raises(AppModuleError, match="no_such_app_module"):
        load_agents("no_such_app_module")


def test_well_formed_declarations_are_read(app: Callable[[str], str]) -> None:
    name = app("""
        from threadline import Agent, Limit, Price, Provider
        helper = Agent(name="helper")
        PRICES = {"m": Price(input=1.0)}
        RATE_LIMITS = [Limit(name="hourly", limit=10, period_s=3600)]
        PROVIDERS = [Provider("local", "http://127.0.0.1:9/v1")]
    """)
    assert list(load_agents(name)) == ["helper"]  # no AGENTS list: every Agent it holds
    assert prices_of(name)["m"].input == 1.0
    assert [r.name for r in rules_of(Settings(app_module=name))] == ["sends", "hourly"]
    assert "local" in providers(Settings(app_module=name))
