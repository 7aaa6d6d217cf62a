"""Tools from MCP servers, through the official ``mcp`` SDK: an agent lists ``McpServer``s (a
command spoken to over stdio, or a streamable HTTP endpoint) and its replies may call their tools.

Each process keeps one connection per server and event loop, opened on first use and opened again
after it fails; the tool list is cached for ``cache_s``. A call waits at most ``timeout_s``; a call
that fails or times out, or a server that cannot be reached, is an error result the model sees.
A server that cannot be listed leaves its tools out of that reply (logged), never fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from threadline.shared.agents import Tool, ToolContext

if TYPE_CHECKING:
    from mcp import Client

log = logging.getLogger(__name__)

MAX_PAGES = 20  # of a tools/list walk
_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class McpServer:
    """An MCP server an agent takes tools from: ``command`` (with ``args``, ``env``, ``cwd``) for
    stdio, or ``url`` (with ``headers``) for streamable HTTP. ``tools``: the names to take (None:
    all); ``prefix``: put before each name the model sees (two servers may both have a ``search``)."""

    name: str
    command: str | None = None
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tools: Sequence[str] | None = None
    prefix: str = ""
    timeout_s: float = 30.0  # to connect, to list, and per call
    cache_s: float = 300.0  # the tool list is asked for again after this

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise TypeError(f"MCP server {self.name!r}: give exactly one of command (stdio) or url (streamable HTTP)")

    def model_name(self, tool: str) -> str:
        """The tool's name as the model sees it (letters, digits, _ and - only, at most 64)."""
        return _NAME.sub("_", self.prefix + tool)[:64]


async def mcp_tools(servers: Sequence[McpServer]) -> list[Tool]:
    """The tools of ``servers`` for one reply (a server that cannot be listed gives none)."""
    found: list[Tool] = []
    for server in servers:
        try:
            found.extend(await _connection(server).tools())
        except Exception as exc:
            log.warning("MCP server %s: no tools this time: %s", server.name, _reason(exc))
    return found


class _Connection:
    """One server's session on one event loop, held open by a task of its own (the SDK's transports
    must be entered and left in one task)."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._listed: tuple[float, list[Tool]] | None = None

    async def tools(self) -> list[Tool]:
        if self._listed is not None and time.monotonic() - self._listed[0] < self.server.cache_s:
            return self._listed[1]
        client = await self._open()
        listed: list[Any] = []
        cursor: str | None = None
        try:
            for _ in range(MAX_PAGES):
                page = await asyncio.wait_for(client.list_tools(cursor=cursor), self.server.timeout_s)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        except BaseException:
            await self.reset()
            raise
        wanted = self.server.tools
        tools = [self._tool(t.name, t.description or "", t.input_schema) for t in listed
                 if wanted is None or t.name in wanted]
        self._listed = (time.monotonic(), tools)
        return tools

    def _tool(self, name: str, description: str, schema: dict[str, Any]) -> Tool:
        async def call(ctx: ToolContext, args: dict[str, Any]) -> Any:
            return await self.call(name, args)

        parameters = schema if schema.get("type") == "object" else {"type": "object", "properties": {}}
        return Tool(self.server.model_name(name), description, dict, call, parameters=parameters)

    async def call(self, name: str, args: dict[str, Any]) -> Any:
        """The result of one call: its structured content, else its text; an exception (which the
        model sees as an error result) when the tool reports an error or the call fails."""
        client = await self._open()
        try:
            result = await asyncio.wait_for(client.call_tool(name, args), self.server.timeout_s)
        except TimeoutError:
            raise TimeoutError(f"the MCP tool {name} did not answer in {self.server.timeout_s:g} s") from None
        except Exception as exc:
            await self.reset()  # the session may be broken: the next call opens a new one
            raise RuntimeError(f"the MCP server {self.server.name} failed: {_reason(exc)}") from None
        text = "\n".join(getattr(block, "text", "") or f"[{getattr(block, 'type', 'content')}]"
                         for block in result.content)
        if result.is_error:
            raise RuntimeError(text or f"the MCP tool {name} failed")
        return result.structured_content if result.structured_content is not None else text

    async def _open(self) -> Client:
        async with self._lock:
            if self._client is not None and self._task is not None and not self._task.done():
                return self._client
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(ready), name=f"mcp-{self.server.name}")
            try:
                self._client = await asyncio.wait_for(asyncio.shield(ready), self.server.timeout_s)
            except BaseException:
                self._task.cancel()
                raise
            return self._client

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        from mcp import Client

        http = None
        try:
            target: Any = self.server.url
            if self.server.command is not None:
                from mcp.client.stdio import StdioServerParameters

                target = StdioServerParameters(command=self.server.command, args=list(self.server.args),
                                               env=dict(self.server.env) if self.server.env is not None else None,
                                               cwd=self.server.cwd)
            elif self.server.headers:
                import httpx2
                from mcp.client.streamable_http import streamable_http_client

                http = httpx2.AsyncClient(headers=dict(self.server.headers), timeout=self.server.timeout_s)
                target = streamable_http_client(str(self.server.url), http_client=http)
            async with Client(target, read_timeout_seconds=self.server.timeout_s) as client:
                ready.set_result(client)
                await asyncio.Event().wait()  # until cancelled (reset, or the loop closing)
        except Exception as exc:
            if not ready.done():
                ready.set_exception(ConnectionError(f"cannot reach the MCP server {self.server.name}: {_reason(exc)}"))
            else:
                log.warning("MCP server %s: the session ended: %s", self.server.name, _reason(exc))
        finally:
            self._client = None
            if http is not None:
                await http.aclose()

    async def reset(self) -> None:
        """Close the session (the next use opens another) and forget the tool list."""
        self._listed = None
        task, self._task, self._client = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


_open: dict[tuple[int, str], _Connection] = {}


def _connection(server: McpServer) -> _Connection:
    key = (id(asyncio.get_running_loop()), server.name)
    found = _open.get(key)
    if found is None or found.server != server:
        found = _open[key] = _Connection(server)
    return found


def _reason(exc: BaseException) -> str:
    """What went wrong, with the first inner error of an exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
