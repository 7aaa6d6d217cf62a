"""What one send asks of its reply beyond the prompt: the app's ``context`` (validated with the
agent's ``context_type``), ``options`` the agent lets a client set (``client_options``), and who
asked (the token's teams, admin flag and the claims the app maps with AUTH_CLAIMS).

The web process checks both against the agent when the send arrives (a clear error naming the
field or option, nothing saved); the request then travels with the reply's job, so the worker,
a retry after a dead worker and the Python API all answer with the same request.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from threadline.shared.errors import BadRequest, Internal

if TYPE_CHECKING:
    from threadline.shared.agents import Agent, Tool
    from threadline.shared.records import Message

log = logging.getLogger(__name__)

MAX_CONTEXT_BYTES = 16 * 1024  # a send's `context`, as JSON

# what a client may set per send, when the agent lists it in ``client_options``;
# "contextOptions.<field>" allows one field of the context options alone
OPTIONS = ("contextOptions", "activeTools", "temperature", "maxTokens", "maxSteps", "model")


class ReplyOptions(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Per-send settings of a reply (each None: the agent's own)."""

    context_options: dict[str, Any] | None = None  # fields of ContextOptions, over the agent's
    active_tools: Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]],
                            msgspec.Meta(max_length=100)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    max_steps: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    model: Annotated[str, msgspec.Meta(max_length=200)] | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked for a reply, as their token said."""

    user_id: str
    teams: tuple[str, ...] = ()
    admin: bool = False
    claims: Mapping[str, Any] = field(default_factory=dict)  # those AUTH_CLAIMS names


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a reply knows of the request that asked for it: handed to an agent's instructions (when
    a callable builds them) and its ``context_handler``; its tools get the same in ``ToolContext``."""

    caller: Caller
    thread_id: str
    agent: Agent
    context: Any = None  # the send's `context`, as the agent's ``context_type``


InstructionsFn = Callable[[RunContext], "str | Awaitable[str]"]
ContextHandler = Callable[[RunContext, "list[Message]"], "list[Message] | Awaitable[list[Message]]"]


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """A send's request as its job carries it (JSON values only)."""

    context: Any = None
    options: ReplyOptions | None = None
    admin: bool = False
    claims: Mapping[str, Any] = field(default_factory=dict)
    decided: bool = False  # the reply continues after a person's decision on tool approvals

    def to_job(self) -> dict[str, Any] | None:
        if self.context is None and self.options is None and not self.admin and not self.claims and not self.decided:
            return None
        return {"context": self.context, "options": msgspec.to_builtins(self.options) if self.options else None,
                "admin": self.admin, "claims": dict(self.claims), "decided": self.decided}

    @classmethod
    def from_job(cls, raw: Mapping[str, Any] | None) -> ReplyRequest:
        if not raw:
            return cls()
        options = raw.get("options")
        return cls(context=raw.get("context"), options=msgspec.convert(options, ReplyOptions) if options else None,
                   admin=bool(raw.get("admin")), claims=dict(raw.get("claims") or {}), decided=bool(raw.get("decided")))


def check_client_options(agent: Agent) -> None:
    """TypeError for an option name an agent's ``client_options`` cannot mean (at load time)."""
    from threadline.shared.agents import ContextOptions

    fields = {f.encode_name for f in msgspec.structs.fields(ContextOptions)}
    for name in agent.client_options:
        head, _, rest = name.partition(".")
        if head not in OPTIONS or (rest and (head != "contextOptions" or rest not in fields)):
            raise TypeError(f"agent {agent.name!r}: unknown client option {name!r}; known: {', '.join(OPTIONS)} "
                            f"and contextOptions.<field> ({', '.join(sorted(fields))})")
    if "model" in agent.client_options and not agent.models:
        raise TypeError(f"agent {agent.name!r} lets clients pick a model but declares no `models` to pick from")


def admit(agent: Agent, context: Any, options: ReplyOptions | None, *, trusted: bool = False) -> None:
    """BadRequest unless ``agent`` takes this ``context`` and these ``options`` from a client
    (``trusted``: server code, which may set every option)."""
    if context is not None:
        if agent.context_type is None:
            raise BadRequest(f"agent {agent.name!r} takes no `context` (it declares no context_type)")
        if len(msgspec.json.encode(context)) > MAX_CONTEXT_BYTES:
            raise BadRequest(f"`context` is over {MAX_CONTEXT_BYTES} bytes of JSON")
        context_of(agent, context)
    if options is None:
        return
    given = msgspec.to_builtins(options)
    if not trusted:
        allowed = set(agent.client_options)
        for name, value in given.items():
            if name == "contextOptions":
                if name in allowed:
                    continue
                refused = [f"contextOptions.{k}" for k in value if f"contextOptions.{k}" not in allowed]
                if refused:
                    raise BadRequest(f"agent {agent.name!r} does not let a client set {', '.join(refused)}")
            elif name not in allowed:
                raise BadRequest(f"agent {agent.name!r} does not let a client set `{name}`")
    applied(agent, options, trusted=trusted)  # a value that does not fit fails here, before anything is saved


def context_of(agent: Agent, raw: Any) -> Any:
    """A send's ``context`` as the agent's ``context_type``; BadRequest naming what does not fit."""
    if raw is None or agent.context_type is None:
        return None
    try:
        return msgspec.convert(raw, agent.context_type)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"`context` does not fit agent {agent.name!r}: {exc}") from None


def applied(agent: Agent, options: ReplyOptions | None, *, trusted: bool = False) -> Agent:
    """``agent`` with ``options`` over its own settings; BadRequest for a value it cannot take (a
    client picks a model among the agent's ``models``; server code, ``trusted``, any)."""
    if options is None:
        return agent
    from threadline.shared.agents import ContextOptions

    changes: dict[str, Any] = {}
    if options.context_options is not None:
        merged = {**msgspec.to_builtins(agent.context_options), **options.context_options}
        try:
            changes["context_options"] = msgspec.convert(merged, ContextOptions)
        except msgspec.ValidationError as exc:
            raise BadRequest(f"`options.contextOptions` does not fit: {exc}") from None
    if options.active_tools is not None:
        try:
            changes["tools"] = tools_named(agent, options.active_tools)
        except UnknownTool as exc:
            raise BadRequest(f"agent {agent.name!r} has no tool {exc.name!r}; its tools: {', '.join(exc.known)}") from None
    if options.model is not None:
        if options.model not in agent.models and not trusted:
            raise BadRequest(f"agent {agent.name!r} does not answer with model {options.model!r}; "
                             f"its models: {', '.join(agent.models) or 'none to pick from'}")
        changes["model"] = options.model
    for name in ("temperature", "max_tokens", "max_steps"):
        value = getattr(options, name)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(agent, **changes)


def fixed_chars(agent: Agent) -> int:
    """The characters of the agent's instructions when they are fixed (built ones: 0, unknown
    until the reply builds them)."""
    return len(agent.instructions) if isinstance(agent.instructions, str) else 0


async def instructions_for(agent: Agent, run: RunContext) -> str:
    """The agent's instructions for one reply, built by its callable if it has one; Internal
    naming what went wrong in the app's code (the reply fails with it)."""
    make = agent.instructions
    if isinstance(make, str):
        return make
    text = await call_hook(agent, "instructions", make, run)
    if not isinstance(text, str):
        raise Internal(f"the agent's instructions must be a str, not {type(text).__name__}")
    return text


class UnknownTool(Exception):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name, self.known = name, known


def tools_named(agent: Agent, names: Sequence[str]) -> list[Tool]:
    """The agent's own tools among ``names`` (a client's activeTools, a step's plan); UnknownTool for
    the first name it has no tool of (an MCP server's tools count when it lists them: McpServer.tools)."""
    known = [t.name for t in agent.tools] + [m.model_name(n) for m in agent.mcp_servers for n in m.tools or ()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownTool(unknown[0], known)
    return [t for t in agent.tools if t.name in names]


async def resolved(value: Any) -> Any:
    """``value``, awaited when a hook returned an awaitable (hooks may be sync or async)."""
    return await value if inspect.isawaitable(value) else value


async def call_hook(agent: Agent, what: str, hook: Callable[..., Any], *args: Any) -> Any:
    """What the app's hook ``what`` of ``agent`` (sync or async) returns for ``args``; Internal
    naming the failure when it raises (the reply fails with it)."""
    try:
        return await resolved(hook(*args))
    except Exception as exc:
        log.exception("the %s of agent %s failed", what, agent.name)
        raise Internal(f"the agent's {what} failed: {type(exc).__name__}: {exc}") from exc
