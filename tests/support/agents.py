"""Agents for the generation tests (APP_MODULE=tests.support.agents)."""

from __future__ import annotations

import os
import sys
import time
from typing import Literal

import msgspec

from threadline.shared.agents import (
    Agent,
    ContextOptions,
    RagOptions,
    SearchOptions,
    ToolContext,
    UsageEvent,
    human_tool,
    tool,
)
from threadline.shared.agents.canvas_tools import canvas_tools
from threadline.shared.agents.document_search import document_search
from threadline.shared.agents.image_tool import image_generation
from threadline.shared.agents.mcp import McpServer
from threadline.shared.agents.request import RunContext
from threadline.shared.agents.steps import StepInput, StepPlan, has_tool_call, step_count_is
from threadline.shared.agents.store_tools import store_tools
from threadline.shared.generation.alone import agent_tool
from threadline.shared.llm.base import RawEvent
from threadline.shared.llm.providers import Provider
from threadline.shared.records import Message, TextPart
from threadline.shared.storage.client import connect, connect_sync
from threadline.shared.usage.ledger import Price


class CityArgs(msgspec.Struct):
    city: str


@tool("The weather in a city")
def weather(ctx: ToolContext, args: CityArgs) -> dict[str, object]:
    return {"city": args.city, "sky": "sunny", "thread": ctx.thread_id, "user": ctx.user_id}


@tool("Always fails")
def boom(ctx: ToolContext, args: CityArgs) -> str:
    raise RuntimeError(f"no weather station in {args.city}")


approve = human_tool("approve", "Ask a person", CityArgs)


@tool("Blocks its thread until the test sets test:release")
def block(ctx: ToolContext, args: CityArgs) -> str:
    client = connect_sync(os.environ["REDIS_URL"])
    client.set("test:block-started", ctx.thread_id)
    deadline = time.monotonic() + 30
    while not client.exists("test:release") and time.monotonic() < deadline:
        time.sleep(0.05)  # a synchronous tool that blocks: it must not stall the event loop
    client.close()
    return "released"


def record_raw(kind: str, body: object) -> None:
    client = connect_sync(os.environ["REDIS_URL"])
    client.rpush("test:raw", msgspec.json.encode({"kind": kind, "body": body}))
    client.close()


def record_usage(event: UsageEvent) -> None:
    client = connect_sync(os.environ["REDIS_URL"])
    client.rpush("test:usage", msgspec.json.encode({
        "user": event.user_id, "thread": event.thread_id, "agent": event.agent_name,
        "model": event.model, "total": event.usage.total_tokens}))
    client.close()


class Plan(msgspec.Struct):
    city: str
    days: int


class LoosePlan(msgspec.Struct):
    city: str
    note: str = ""  # optional: strict mode cannot express it


async def record_usage_async(event: UsageEvent) -> None:
    client = connect(os.environ["REDIS_URL"])
    await client.rpush("test:usage-async", msgspec.json.encode({
        "provider": event.provider, "model": event.model, "agent": event.agent_name, "user": event.user_id,
        "cached": event.usage.cached_tokens, "reasoning": event.usage.reasoning_tokens}))
    await client.aclose()


async def record_raw_event(event: RawEvent) -> None:
    client = connect(os.environ["REDIS_URL"])
    await client.rpush("test:raw-async", msgspec.json.encode({
        "kind": event.kind, "provider": event.provider, "model": event.model, "thread": event.thread_id}))
    await client.aclose()


def failing_usage(event: UsageEvent) -> None:
    raise RuntimeError("the app's usage handler is broken")


class DeskContext(msgspec.Struct, forbid_unknown_fields=True):
    """What the app knows of a request to the desk agent: the document open in its editor."""

    document: str
    plan: Literal["free", "pro"] = "free"


class NoArgs(msgspec.Struct):
    pass


def desk_instructions(run: RunContext) -> str:
    document = run.context.document if run.context is not None else "no document"
    return f"You help {run.caller.user_id} of org {run.caller.claims.get('org', '-')} edit {document}."


async def desk_context(run: RunContext, messages: list[Message]) -> list[Message]:
    """Leaves out the messages marked [aside] and tells the model the caller's plan first."""
    plan = run.context.plan if run.context is not None else "free"
    note = Message(message_id="", thread_id=run.thread_id, role="system", text=f"Plan: {plan}.",
                   parts=[TextPart(text=f"Plan: {plan}.")])
    return [note, *(m for m in messages if "[aside]" not in m.text)]


@tool("Who is asking, and about what")
def whoami(ctx: ToolContext, args: NoArgs) -> dict[str, object]:
    caller = ctx.caller
    assert caller is not None
    return {"user": caller.user_id, "teams": list(caller.teams), "admin": caller.admin, "claims": dict(ctx.claims),
            "context": msgspec.to_builtins(ctx.context)}


def plan_steps(step: StepInput) -> StepPlan | None:
    """The first call on a smaller model with the weather tool alone; later ones see only the last
    exchange (the call and its result), at temperature 0 with a seed."""
    if step.number == 0:
        return StepPlan(model="fake-small", active_tools=["weather"], instructions="First, the weather.")
    return StepPlan(messages=step.messages[-2:], temperature=0.0, options={"seed": 7})


class TransferArgs(msgspec.Struct):
    to: str
    amount: int


@tool("Sends money; a person approves transfers over 100", needs_approval=lambda ctx, args: args.amount > 100)
def transfer(ctx: ToolContext, args: TransferArgs) -> dict[str, object]:
    client = connect_sync(os.environ["REDIS_URL"])
    client.rpush("test:transfers", msgspec.json.encode({"to": args.to, "amount": args.amount}))  # ran: counted
    client.close()
    return {"sent": args.amount, "to": args.to}


@tool("Deletes a file", needs_approval=True)
def delete_file(ctx: ToolContext, args: CityArgs) -> str:
    return f"deleted {args.city}"


@tool("Stamps the open document (a person approves it first)", needs_approval=True)
def stamp(ctx: ToolContext, args: NoArgs) -> dict[str, object]:
    return {"stamped": msgspec.to_builtins(ctx.context), "claims": dict(ctx.claims)}


def broken_instructions(run: RunContext) -> str:
    raise RuntimeError("the app's instructions are broken")


# the suite's MCP server (tests/support/mcp_server.py) over stdio, and over HTTP where a test runs one
CALC = McpServer("calc", command=sys.executable, args=["-m", "tests.support.mcp_server"],
                 cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                 prefix="calc_", timeout_s=10)  # (its start, a Python importing the SDK, is slow on a loaded machine)
REMOTE = McpServer("remote", url=os.environ.get("TEST_MCP_URL", "http://127.0.0.1:9/mcp"), prefix="remote_",
                   tools=["shout"], timeout_s=3)
NOWHERE = McpServer("nowhere", url="http://127.0.0.1:9/mcp", timeout_s=2)


PROVIDERS = [
    # DeepSeek's thinking mode, reached at the test server: reasoning goes back with tool calls
    Provider("deepseek", os.environ.get("LLM_BASE_URL", "http://127.0.0.1:9/v1"), api_key="ds-key",
             headers={"X-Provider": "deepseek"}, reasoning_in_history=True, options={"thinking_budget": 512}),
    # a server whose models read PDFs as file inputs, and one whose models take no images
    Provider("pdfs", os.environ.get("LLM_BASE_URL", "http://127.0.0.1:9/v1"), pdf_files=True),
    Provider("text-only", os.environ.get("LLM_BASE_URL", "http://127.0.0.1:9/v1"), images=False),
    # Anthropic's Messages API (the test server speaks it at /v1/messages; the SDK adds the /v1)
    Provider("claude", os.environ.get("LLM_BASE_URL", "http://127.0.0.1:9/v1").removesuffix("/v1"),
             api_key="sk-ant-test", api="anthropic"),
    # OpenAI's Responses API (the test server speaks it at /v1/responses)
    Provider("responses", os.environ.get("LLM_BASE_URL", "http://127.0.0.1:9/v1"), api_key="sk-resp-test",
             api="responses"),
]


PRICES = {"fake": Price(input=1.0, output=2.0, cached_input=0.5)}  # dollars per million tokens

AGENTS = [
    Agent(name="echo", instructions="Be brief.", usage_handler=record_usage, throttle_ms=20),
    Agent(name="memo", instructions="Remember what matters.", working_memory="user", throttle_ms=10, max_steps=3),
    Agent(name="editor", instructions="Edit the canvas.", tools=canvas_tools(), throttle_ms=10, max_steps=3),
    Agent(name="keeper", instructions="Remember facts; recall them.", tools=store_tools(), throttle_ms=10, max_steps=3),
    Agent(name="titled", instructions="Be brief.", auto_title=True, throttle_ms=20),
    Agent(name="tools", instructions="Use tools.", tools=[weather, boom, approve], max_steps=4, throttle_ms=20),
    Agent(name="planner", instructions="JSON only.", output=Plan, throttle_ms=10),
    Agent(name="strict", double_texting="reject"),
    Agent(name="interrupting", double_texting="interrupt"),
    Agent(name="mock", model="mock", throttle_ms=20),
    Agent(name="blocker", model="mock", tools=[block], max_steps=2, throttle_ms=20),
    Agent(name="mock-retry", model="mock", throttle_ms=20, on_worker_death="retry", max_worker_retries=1),
    Agent(name="raw", raw_handler=record_raw),
    Agent(name="resilient", on_worker_death="retry", max_worker_retries=1),
    Agent(name="brief", instructions="Short.", context_budget_chars=40),
    Agent(name="reasoner", model="o3-mini", temperature=0.2, max_tokens=100),
    Agent(name="custom-reasoner", model="my-reasoner-v1", max_tokens=50, temperature=0.5),
    Agent(name="mistral", model="mistral-small-latest"),
    Agent(name="groq", model="llama-3.3-70b-versatile"),
    Agent(name="deepseek", provider="deepseek", model="deepseek-reasoner", tools=[weather], max_steps=3,
          throttle_ms=10, provider_options={"reasoning_effort": "high"}),
    Agent(name="loose", output=LoosePlan, throttle_ms=10),
    # deltas held long: an abort finds received text no delta carried yet
    Agent(name="slow-flush", throttle_ms=5000),
    # the real model servers' tests (tests/models): a small model, short answers, no sampling noise
    Agent(name="local", instructions="Answer in one short sentence.", temperature=0.0, max_tokens=40,
          throttle_ms=20),
    Agent(name="local-long", instructions="You write long, detailed answers.", temperature=0.0, max_tokens=600,
          throttle_ms=20),
    Agent(name="local-tools", instructions="You answer questions about the weather with the weather tool.",
          tools=[weather], max_steps=2, temperature=0.0, max_tokens=60, throttle_ms=20,
          provider_options={"tool_choice": {"type": "function", "function": {"name": "weather"}}}),
    Agent(name="local-tools-auto", instructions="You answer questions about the weather.", tools=[weather],
          temperature=0.0, max_tokens=40, throttle_ms=20),
    # Anthropic's Messages API, natively
    Agent(name="claude", provider="claude", model="claude-sonnet-4-5", instructions="Use tools.", tools=[weather],
          max_steps=3, throttle_ms=10),
    Agent(name="claude-thinker", provider="claude", model="claude-sonnet-4-5", max_tokens=2048, throttle_ms=10,
          provider_options={"thinking": {"type": "enabled", "budget_tokens": 1024}}),
    Agent(name="claude-thinking-tools", provider="claude", model="claude-sonnet-4-5", tools=[weather], max_steps=3,
          max_tokens=2048, throttle_ms=10, provider_options={"thinking": {"type": "enabled", "budget_tokens": 1024}}),
    Agent(name="claude-searcher", provider="claude", model="claude-sonnet-4-5", tools=[weather], throttle_ms=10,
          provider_options={"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]}),
    Agent(name="claude-planner", provider="claude", model="claude-sonnet-4-5", output=Plan, throttle_ms=10),
    # OpenAI's Responses API, natively
    Agent(name="gpt-r", provider="responses", model="gpt-5-mini", instructions="Use tools.", tools=[weather],
          max_steps=3, throttle_ms=10, provider_options={"reasoning": {"effort": "low", "summary": "auto"}}),
    Agent(name="gpt-r-searcher", provider="responses", model="gpt-5-mini", tools=[weather], throttle_ms=10,
          provider_options={"tools": [{"type": "web_search"}]}),
    Agent(name="gpt-r-planner", provider="responses", model="gpt-5-mini", output=Plan, max_tokens=200,
          throttle_ms=10),
    # its own model name: what the server refuses is remembered per model
    Agent(name="local-planner", model="gemma-3-270m", instructions="Plan trips.", output=Plan, throttle_ms=10,
          temperature=0.0, max_tokens=400),  # llama-server's grammar lets the small model pad with whitespace
    Agent(name="observed", usage_handler=record_usage_async, raw_handler=record_raw_event),
    Agent(name="broken-handler", usage_handler=failing_usage),
    Agent(name="recall", instructions="Use what you remember.", context_options=ContextOptions(
        recent_messages=2, search_options=SearchOptions(limit=3, text_search=True, vector_search=True,
                                                        message_range={"before": 0, "after": 0}))),
    Agent(name="librarian", instructions="Answer from the passages.", throttle_ms=10, context_options=ContextOptions(
        recent_messages=4, rag=RagOptions(namespaces=["user", "global"], limit=2, before=0, after=0))),
    Agent(name="researcher", instructions="Search before answering.", throttle_ms=10, max_steps=3,
          tools=[document_search(limit=2)]),
    Agent(name="viewer", instructions="Look at the files.", throttle_ms=10),  # PDFs: their text (no pdf_files)
    Agent(name="pdf-viewer", provider="pdfs", throttle_ms=10),  # PDFs as file inputs (the provider takes them)
    Agent(name="pdf-as-text", provider="pdfs", pdf_input="text", throttle_ms=10),
    Agent(name="blind", provider="text-only", throttle_ms=10),  # images: a note in their place
    Agent(name="blind-strict", provider="text-only", unsupported_files="fail", throttle_ms=10),
    Agent(name="painter", instructions="Draw what is asked.", tools=[image_generation("gpt-image-1")], max_steps=2,
          throttle_ms=10),
    Agent(name="desk", instructions=desk_instructions, context_type=DeskContext, context_handler=desk_context,
          tools=[whoami, weather], max_steps=3, throttle_ms=10, models=("fake-small", "fake-large"),
          client_options=("temperature", "activeTools", "contextOptions.recentMessages", "model")),
    Agent(name="desk-approver", context_type=DeskContext, tools=[stamp], max_steps=3, throttle_ms=10),
    Agent(name="desk-broken", instructions=broken_instructions, throttle_ms=10),
    Agent(name="stepper", tools=[weather, whoami], max_steps=5, throttle_ms=10, prepare_step=plan_steps,
          stop_when=[has_tool_call("whoami")]),
    Agent(name="counted", tools=[weather], max_steps=5, throttle_ms=10, stop_when=step_count_is(2)),
    Agent(name="stop-on-text", tools=[weather], max_steps=5, throttle_ms=10,
          stop_when=lambda steps: "enough" in steps[-1].text),
    Agent(name="manager", instructions="Delegate trip plans.", throttle_ms=10, max_steps=3,
          tools=[agent_tool("planner", "Plans a trip: give it the trip in words"), agent_tool("manager", "Yourself")]),
    Agent(name="mcp-user", mcp_servers=[CALC, REMOTE], max_steps=4, throttle_ms=10),
    Agent(name="mcp-nowhere", mcp_servers=[NOWHERE], throttle_ms=10),
    Agent(name="banker", instructions="Move money.", tools=[transfer, delete_file, weather], max_steps=4,
          throttle_ms=10),
    Agent(name="bad-plan", tools=[weather], max_steps=2, throttle_ms=10,
          prepare_step=lambda step: StepPlan(active_tools=["nope"])),
]

from tests.support.workflows import WORKFLOWS  # noqa: E402, F401 - the workflows of this test app
