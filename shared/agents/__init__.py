"""Agents are Python: instructions, model, tools, context and storage options.

An app module (APP_MODULE) lists its agents in ``AGENTS``; web and workers import
the same definitions. Tools are callables whose arguments are a msgspec Struct;
their JSON schema comes from msgspec.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from threadline.shared.agents.request import (
    Caller,
    ContextHandler,
    InstructionsFn,
    ReplyOptions,
    ReplyRequest,
    RunContext,
    check_client_options,
)
from threadline.shared.agents.steps import (
    PrepareStep,
    StepInput,
    StepPlan,
    StepResult,
    StopCondition,
    has_tool_call,
    step_count_is,
)
from threadline.shared.app_module import AppModuleError, declared_list
from threadline.shared.errors import BadRequest
from threadline.shared.llm.base import RawHandler
from threadline.shared.rag.options import RagOptions
from threadline.shared.records import Usage

if TYPE_CHECKING:
    from threadline.shared.agents.mcp import McpServer
    from threadline.shared.config import Settings
    from threadline.shared.files.store import FileStore
    from threadline.shared.rag.knowledge import Knowledge, Sources
    from threadline.shared.records import Part

__all__ = ["Agent", "Caller", "ContextOptions", "ReplyOptions", "ReplyRequest", "RunContext", "StepInput",
           "StepPlan", "StepResult", "Tool", "ToolContext", "UsageEvent", "has_tool_call", "human_tool",
           "step_count_is", "tool"]


Count = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class SearchOptions(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    limit: Count = 10
    text_search: bool = False
    vector_search: bool = False
    message_range: dict[str, Count] = msgspec.field(default_factory=lambda: {"before": 2, "after": 1})
    vector_score_threshold: float | None = None


class SnippetOptions(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Which thread snippets reach the context: the most recent ones and those matching the prompt."""

    recent: Count = 3
    search: bool = True
    limit: Count = 3




class ContextOptions(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """What the model sees besides the prompt (as in the reference)."""

    recent_messages: Count = 100
    exclude_tool_messages: bool = True
    search_options: SearchOptions | None = None
    search_other_threads: bool = False
    snippets: SnippetOptions | None = msgspec.field(default_factory=SnippetOptions)
    rag: RagOptions | None = None


SaveMessages = Literal["all", "none", "promptAndOutput"]
DoubleTexting = Literal["enqueue", "interrupt", "reject"]


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Handed to an agent's usage handler after every model call."""

    user_id: str
    thread_id: str
    agent_name: str
    model: str
    provider: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool knows about the call it serves.

    ``knowledge`` searches documents for the prompt's user (None where no memory search is
    reachable); ``sources`` collects what the reply drew on: a tool adds to it and the reply
    keeps them as ``source`` parts (see shared.rag.knowledge). ``files`` keeps files for the
    user and ``shown`` takes parts the final reply shows (shared.agents.image_tool).
    """

    user_id: str
    thread_id: str
    prompt_message_id: str
    agent: Agent
    tool_call_id: str
    knowledge: Knowledge | None = None
    sources: Sources | None = None
    files: FileStore | None = None  # the user's files (a tool may keep what it makes)
    shown: list[Part] | None = None  # parts the final reply shows (e.g. a generated image)
    settings: Settings | None = None
    context: Any = None  # the send's `context`, as the agent's ``context_type`` (shared.agents.request)
    caller: Caller | None = None  # who asked: their teams, admin flag and the claims the app maps
    # the process's shared.runtime.Runtime (an agent tool runs its agent with it); untyped here, as
    # agents sit below the runtime
    runtime: Any = None

    @property
    def claims(self) -> Mapping[str, Any]:
        """The token claims the app hands to agents (AUTH_CLAIMS), by name."""
        return self.caller.claims if self.caller is not None else {}


ToolHandler = Callable[[ToolContext, Any], Any | Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. ``handler=None`` means a person answers it."""

    name: str
    description: str
    args_type: type
    handler: ToolHandler | None = None
    parameters: dict[str, Any] | None = None  # a JSON schema given as is (an MCP tool's): args are a dict
    # a person approves each call first (or those the predicate picks: (ctx, args) -> bool, may be async)
    needs_approval: bool | Callable[[ToolContext, Any], bool | Awaitable[bool]] = False

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description,
                         "parameters": self.parameters if self.parameters is not None else inline_schema(self.args_type)},
        }

    def parse_args(self, raw: str) -> Any:
        if self.parameters is not None:  # the server checks them against its schema
            return msgspec.json.decode(raw or "{}", type=dict[str, Any])
        return msgspec.json.decode(raw or "{}", type=self.args_type)


def tool(description: str, *, name: str | None = None,
         needs_approval: bool | Callable[[ToolContext, Any], bool | Awaitable[bool]] = False,
         ) -> Callable[[ToolHandler], Tool]:
    """Make a Tool of ``fn(ctx, args: SomeStruct)``; the Struct gives the JSON schema. With
    ``needs_approval`` (or a predicate over the call's context and arguments) a call waits for a
    person's decision before it runs."""

    def wrap(fn: ToolHandler) -> Tool:
        params = list(inspect.signature(fn).parameters.values())
        hints = inspect.get_annotations(fn, eval_str=True)
        if len(params) != 2 or params[1].name not in hints:
            raise TypeError(f"tool {fn.__name__} must be fn(ctx, args: SomeStruct)")
        return Tool(name or fn.__name__, description, hints[params[1].name], fn, needs_approval=needs_approval)

    return wrap


def human_tool(name: str, description: str, args_type: type) -> Tool:
    """A tool with no handler: the generation stops with the call until a person answers."""
    return Tool(name, description, args_type, None)


@dataclass(slots=True)
class Agent:
    name: str
    # or a callable (sync or async) building them for each reply from its RunContext
    instructions: str | InstructionsFn = "You are a helpful assistant."
    model: str | None = None  # None: LLM_MODEL, or the mock without any provider
    tools: list[Tool] = field(default_factory=list)
    context_options: ContextOptions = field(default_factory=ContextOptions)
    save_messages: SaveMessages = "promptAndOutput"
    max_steps: int = 1
    temperature: float | None = None
    max_tokens: int | None = None
    max_retries: int = 3
    chunking: str = "word"  # "word", "line", or a regex whose matches end a chunk
    throttle_ms: int = 100
    double_texting: DoubleTexting = "enqueue"
    output: type | None = None  # structured output: a msgspec type
    context_budget_chars: int | None = None  # over it, the oldest messages are summarized into the thread summary
    # a working memory it reads on every reply and keeps with its update_working_memory tool: the user's
    # (across their threads) or the thread's (shared.agents.working_memory)
    working_memory: Literal["user", "thread"] | None = None
    on_worker_death: Literal["fail", "retry"] = "fail"  # a reply whose worker died: failed, or answered again
    max_worker_retries: int = 1
    usage_handler: Callable[[UsageEvent], Any] | None = None  # sync or async
    raw_handler: RawHandler | None = None  # (RawEvent) or (kind, payload); sync or async
    provider: str | None = None  # a name from the app's PROVIDERS; None: `default` (LLM_BASE_URL)
    provider_options: dict[str, Any] = field(default_factory=dict)  # body fields for this agent's calls
    # files in the context (shared.generation.attachments): PDFs as file inputs where the provider takes
    # them, else their text ("auto"), or always one way; a kind the model cannot take is left out
    # with a note in its place ("note"), or fails the reply ("fail")
    pdf_input: Literal["auto", "file", "text"] = "auto"
    unsupported_files: Literal["note", "fail"] = "note"
    # an untitled thread ("", "New chat") is named after its first finished reply, by a short call to
    # ``title_model`` (None: the agent's own model); the title shows live in every tab
    auto_title: bool = False
    title_model: str | None = None
    # per request (shared.agents.request): the msgspec type a send's `context` must fit (None: no context
    # taken); a hook that may reorder, drop or add the context's messages before each model call; the
    # options a client may set per send ("temperature", "contextOptions.recentMessages"...; server code
    # may set all); the models a client may pick among
    context_type: type | None = None
    context_handler: ContextHandler | None = None
    client_options: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    # steps (shared.agents.steps): end the reply after a step whose tools ran when any condition holds
    # (step_count_is, has_tool_call, or a predicate over the steps); change each model call before it runs
    stop_when: StopCondition | Sequence[StopCondition] = ()
    prepare_step: PrepareStep | None = None
    # tools from MCP servers (shared.agents.mcp), listed for each reply beside ``tools``
    mcp_servers: Sequence[McpServer] = ()

    def tool_named(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


def inline_schema(tp: Any) -> dict[str, Any]:
    """msgspec's JSON schema with its $refs resolved in place (what model APIs accept best).

    A recursive type cannot be written out in full: its recursive references stay
    ``$ref``s into the ``$defs`` kept beside them.
    """
    schema = msgspec.json.schema(tp)
    defs = schema.pop("$defs", {})
    kept: set[str] = set()

    def resolve(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[1]
                if name in path:
                    kept.add(name)
                    return node
                return resolve(defs[name], (*path, name))
            return {k: resolve(v, path) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, path) for v in node]
        return node

    out: dict[str, Any] = resolve(schema, ())
    if kept:
        out["$defs"] = {name: resolve(defs[name], (name,)) for name in sorted(kept)}
    return out


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` made ready for ``strict: true`` output, or None when strict mode cannot express it.

    Strict mode needs every object to list all its properties as required and to
    forbid others; a type with optional fields (defaults) is sent non-strict.
    """
    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        if out.get("type") == "object" or "properties" in out:
            props = out.get("properties", {})
            if set(out.get("required", [])) != set(props) or out.get("additionalProperties") not in (None, False):
                raise _NotStrict
            out["additionalProperties"] = False
            out["required"] = list(props)
        return out

    try:
        return walk(schema)  # type: ignore[no-any-return]
    except _NotStrict:
        return None


class _NotStrict(Exception):
    pass


@cache
def load_agents(app_module: str) -> dict[str, Agent]:
    """The agents of an app module (its AGENTS list), by name; the first is the default."""
    agents = {a.name: a for a in declared_list(app_module, "AGENTS", Agent, every=True)}
    if not agents:
        raise AppModuleError(f"{app_module} defines no agents")
    for agent in agents.values():
        try:
            check_client_options(agent)
        except TypeError as exc:
            raise AppModuleError(f"{app_module}: {exc}") from None
    return agents


def agent_named(app_module: str, name: str | None) -> Agent:
    """The named agent (the module's first when None); BadRequest when unknown."""
    agents = load_agents(app_module)
    if name is None:
        return next(iter(agents.values()))
    try:
        return agents[name]
    except KeyError:
        raise BadRequest(f"unknown agent {name!r}; known: {', '.join(agents)}") from None
