"""The structure the Layout section of docs/operations.md promises, checked on the sources:
the web process never imports the workers, no two modules import each other (directly or
around a loop), every Redis key is built in shared/keys.py (RQ's in shared/jobs.py), and
every server frame in server/frames.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.any_store  # (its own store, or none: the same on a cluster)

ROOT = Path(__file__).resolve().parents[1]
LINKED = ("shared", "server", "workers")  # top-level folders, installed as threadline.shared, ...


def modules() -> dict[str, Path]:
    """Every module of the package by its installed name (threadline.shared.keys: shared/keys.py)."""
    out = {}
    for path in [p for top in (*LINKED, "threadline") for p in (ROOT / top).rglob("*.py")]:
        top, *rest = path.relative_to(ROOT).with_suffix("").parts
        if top == "threadline" and rest[0] in LINKED:
            continue
        parts = ["threadline", *rest] if top == "threadline" else ["threadline", top, *rest]
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_every_module_is_imported_by_its_installed_name() -> None:
    """Nothing imports the top-level folders by their own names: installed, only threadline exists
    (an app's own server/ package stays its own)."""
    for path in [p for top in (*LINKED, "threadline", "tests", "bench") for p in (ROOT / top).rglob("*.py")]:
        if "node_modules" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            bad = [n for n in names if n.split(".")[0] in LINKED]
            assert not bad, f"{path.relative_to(ROOT)}:{node.lineno} imports {bad}: use threadline.{bad[0]}"


def test_the_package_root_never_imports_the_workers() -> None:
    """Every process imports the threadline package first (the web process too)."""
    mods = modules()
    graph = {name: runtime_imports(path, set(mods)) for name, path in mods.items()}
    seen, todo = set(), ["threadline"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    assert not {m for m in seen if m.startswith("threadline.workers")}


def runtime_imports(path: Path, known: set[str], typing_too: bool = False) -> set[str]:
    """Project modules imported when ``path`` runs (and those under ``if TYPE_CHECKING:`` with
    ``typing_too``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and not typing_too:
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list) and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    visit([n for n in inner if isinstance(n, ast.stmt)] +
                          [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])

    visit(tree.body)
    return {m for m in found if m in known}


def test_the_web_process_never_imports_the_workers() -> None:
    mods = modules()
    for name, path in mods.items():
        if name.startswith("threadline.server"):
            bad = {m for m in runtime_imports(path, set(mods)) if m.startswith("threadline.workers")}
            assert not bad, f"{name} imports {bad}"


def test_no_import_cycles() -> None:
    mods = modules()
    graph = {name: runtime_imports(path, set(mods)) - {name} for name, path in mods.items()}
    # a package's __init__ importing its own submodules is how packages work: not a cycle
    graph = {n: {m for m in deps if not m.startswith(n + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(dep):], dep]))
            if dep not in state:
                walk(dep, [*trail, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])


def test_the_listener_and_the_delta_log_know_nothing_of_live_queries() -> None:
    mods = modules()
    for name in ("threadline.server.fanout", "threadline.server.delta_log"):
        deps = runtime_imports(mods[name], set(mods), typing_too=True)
        live = ("threadline.server.live", "threadline.server.ws", "threadline.server.queries")
        assert not {d for d in deps if d.startswith(live)}, name


def test_keys_are_built_in_one_place() -> None:
    pattern = re.compile(r"""["'](tl|rq):|\{keys\.PREFIX\}|\{PREFIX\}""")
    for name, path in modules().items():
        if name in ("threadline.shared.keys", "threadline.shared.jobs", "threadline.shared.storage.layout"):
            continue  # (layout: the names of earlier layouts, which it migrates)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.relative_to(ROOT)}:{number} builds a key: {line.strip()}"


def test_server_frames_are_built_in_one_place() -> None:
    pattern = re.compile(r"""\{\\?["']type\\?["']:""")
    for name, path in modules().items():
        if not name.startswith("threadline.server") or name in ("threadline.server.frames", "threadline.server.ui_stream"):  # ours; the AI SDK's
            continue
        text = path.read_text()
        assert not pattern.search(text), f"{path.relative_to(ROOT)} builds a frame"
        assert '"type": "' not in text or name == "threadline.server.ws.client_frames", path


def test_a_process_builds_its_parts_in_one_place() -> None:
    """The store, the file store, the usage ledger, the rate limits and the workflow journal are
    made from the settings in shared/runtime.py only (the web app, the Python API and the workers
    each hold a Runtime), and the settings are read only where a process starts."""
    built = re.compile(r"\b(Store\(|(FileStore|UsageLedger|Limits|Journal)\.from_settings\()")
    entry_points = {"threadline.shared.runtime", "threadline.server.__main__", "threadline.server.launch",
                    "threadline.server.app", "threadline._api"}
    for name, path in modules().items():
        text = path.read_text()
        if name != "threadline.shared.runtime":
            assert not built.search(text), f"{path.relative_to(ROOT)} builds a part of the runtime: " \
                                           f"{built.search(text).group(0)}"  # type: ignore[union-attr]
        if name not in entry_points:
            assert "load_settings(" not in text or name == "threadline.shared.config", \
                f"{path.relative_to(ROOT)} reads the settings: ask shared.runtime.process_settings()"


def test_shared_never_imports_the_public_api_above_it() -> None:
    """Not even lazily inside a function: threadline.shared is what the API is built on."""
    api = ("threadline", "threadline._api", "threadline._client", "threadline.cli", "threadline.example")
    for name, path in modules().items():
        if not name.startswith("threadline.shared"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            bad = [n for n in names if n in api]
            assert not bad, f"{path.relative_to(ROOT)}:{node.lineno} imports {bad}"


def test_every_transport_runs_a_mutation_through_one_path() -> None:
    """The WebSocket session, the HTTP API, the AI SDK transport and the playground all call
    server.mutate.run_mutation: one parse, one exactly-once record, one metric."""
    direct = re.compile(r"\bMUTATIONS\[|\.handler\(|\brun_once\(")
    for name, path in modules().items():
        if not name.startswith("threadline.server") or name in (
                "threadline.server.mutate", "threadline.server.mutations", "threadline.server.idempotency"):
            continue
        found = direct.search(path.read_text())
        assert not found, f"{path.relative_to(ROOT)} runs a mutation itself ({found.group(0)}): use run_mutation"


def test_every_http_request_is_authenticated_in_one_place() -> None:
    """server/auth.py reads the bearer token and verifies it; the WebSocket verifies its connect
    frame's token with the same verifier; nothing else looks at credentials."""
    reads = re.compile(r"""headers\.get\(["']authorization|\.verify\(|\bbearer\(""", re.IGNORECASE)
    for name, path in modules().items():
        if not name.startswith("threadline.server") or name == "threadline.server.auth":
            continue
        hits = [line.strip() for line in path.read_text().splitlines() if reads.search(line)]
        allowed = ["identity = await self.services.verifier.verify(frame.token)"] \
            if name == "threadline.server.ws.session" else []
        assert hits == allowed, f"{path.relative_to(ROOT)} authenticates by itself: {hits}"


# The layers of threadline.shared, bottom first: a package imports only packages below it (the
# base layer is the flat modules of shared/ itself; typing-only imports count too).
LAYERS = [
    "base",  # config, errors, ids, keys, records, score, clock, auth, logs, metrics, app_module...
    "storage",  # the Redis client, the script runner, guarded writes, pagination: no feature
    "webhooks",  # endpoints and deliveries of events (recorded by the write paths above it)
    "schedules",  # when a schedule fires and what it does (done by workers.schedules)
    "llm",  # model clients
    "files", "usage", "indexing",  # file records and blobs; usage and rate limits; the embedding queue
    "streams", "documents",  # a reply's deltas; RAG documents
    "items",  # the cross-thread store of small JSON items
    "threads",  # threads, messages, snippets (and the store over all of the above)
    "vectors", "rag",  # the vector index and search; retrieval for replies
    "agents", "workflows",  # agent definitions and ready tools; durable workflows
    "runtime",  # a process's parts, built once
    "userdata",  # a user's data on request: exported, erased (over every store)
    "generation",  # the engine that answers a prompt
]


def layer_of(module: str) -> str | None:
    """The layer of a threadline.shared module (None outside shared)."""
    parts = module.split(".")
    if parts[:2] != ["threadline", "shared"]:
        return None
    if len(parts) == 2 or not (ROOT / "shared" / parts[2]).is_dir():
        return "runtime" if parts[2:3] == ["runtime"] else "base"
    return parts[2]


def test_every_package_of_shared_has_a_layer() -> None:
    packages = {p.name for p in (ROOT / "shared").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS) - {"base", "runtime"}


def test_no_package_imports_a_package_above_it() -> None:
    mods = modules()
    rank = {name: i for i, name in enumerate(LAYERS)}
    for name, path in mods.items():
        own = layer_of(name)
        if own is None:
            continue
        for dep in runtime_imports(path, set(mods), typing_too=True):
            if dep.startswith(("threadline.server", "threadline.workers")):
                raise AssertionError(f"{name} imports {dep}: shared is below the processes")
            other = layer_of(dep)
            if other is not None and rank[other] > rank[own]:
                raise AssertionError(f"{name} ({own}) imports {dep} ({other}), a layer above it")


def test_tests_mirror_the_packages() -> None:
    """tests/shared/<name>/ tests the package shared/<name>/; tests of several processes at once live
    in tests/scenarios/, not beside a package."""
    for folder in (ROOT / "tests" / "shared").iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            assert (ROOT / "shared" / folder.name / "__init__.py").exists(), f"{folder}: no such package"
    for path in (ROOT / "tests" / "shared").rglob("test_*.py"):
        assert "run_stack" not in path.read_text(), f"{path}: a scenario of several processes, for tests/scenarios/"


def test_the_clock_is_read_in_one_place() -> None:
    """Milliseconds since the epoch come from shared/clock.py (one place to change, or to fake)."""
    for name, path in modules().items():
        if name != "threadline.shared.clock":
            assert "time.time() * 1000" not in path.read_text(), f"{path.relative_to(ROOT)}: use clock.now_ms()"
