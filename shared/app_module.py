"""The one reader of the app module (APP_MODULE): what it declares, by name and type.

An app declares its parts as module-level names: AGENTS, WORKFLOWS, RATE_LIMITS,
PRICES, PROVIDERS. Each feature asks here for its own name with the type it
expects, so the module is imported in one place and a malformed declaration
fails the same way whichever list is wrong: ``AppModuleError``, a ConfigError
naming the module, the name and what it should hold.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TypeVar

from threadline.shared.errors import ConfigError

T = TypeVar("T")


class AppModuleError(ConfigError):
    """The app module cannot be imported, or one of its declarations has the wrong type."""


def app_module(name: str) -> ModuleType:
    """The imported app module (Python keeps it: a second call costs a dict lookup)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise AppModuleError(f"APP_MODULE {name!r} cannot be imported: {exc}") from exc


def declared_list(name: str, listed: str, kind: type[T], *, every: bool = False) -> list[T]:
    """The module's ``listed`` list (AGENTS, RATE_LIMITS...), each item a ``kind``; with ``every``,
    when the module has no such list, every ``kind`` it holds, in order (an app that just
    defines its agents)."""
    module = app_module(name)
    found = getattr(module, listed, None)
    if found is None:
        return [v for v in vars(module).values() if isinstance(v, kind)] if every else []
    if not isinstance(found, list | tuple) or not all(isinstance(v, kind) for v in found):
        raise AppModuleError(f"{name}.{listed} must be a list of {kind.__name__} objects")
    return list(found)


def declared_map(name: str, listed: str, kind: type[T]) -> dict[str, T]:
    """The module's ``listed`` mapping (PRICES) of names to ``kind``; empty when it has none."""
    found = getattr(app_module(name), listed, None)
    if found is None:
        return {}
    if not isinstance(found, dict) or not all(isinstance(k, str) and isinstance(v, kind) for k, v in found.items()):
        raise AppModuleError(f"{name}.{listed} must map names to {kind.__name__} objects")
    return dict(found)
