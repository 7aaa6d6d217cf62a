"""Agents for the generation tests (APP_MODULE=tests.support.agents)."""

from __future__ import annotations

import os

import msgspec
import redis

from shared.agents import (
    Agent,
    ContextOptions,
    SearchOptions,
    ToolContext,
    UsageEvent,
    human_tool,
    tool,
)


class CityArgs(msgspec.Struct):
    city: str


@tool("The weather in a city")
def weather(ctx: ToolContext, args: CityArgs) -> dict[str, object]:
    return {"city": args.city, "sky": "sunny", "thread": ctx.thread_id, "user": ctx.user_id}


@tool("Always fails")
def boom(ctx: ToolContext, args: CityArgs) -> str:
    raise RuntimeError(f"no weather station in {args.city}")


approve = human_tool("approve", "Ask a person", CityArgs)


def record_raw(kind: str, body: object) -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.rpush("test:raw", msgspec.json.encode({"kind": kind, "body": body}))
    client.close()


def record_usage(event: UsageEvent) -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.rpush("test:usage", msgspec.json.encode({
        "user": event.user_id, "thread": event.thread_id, "agent": event.agent_name,
        "model": event.model, "total": event.usage.total_tokens}))
    client.close()


class Plan(msgspec.Struct):
    city: str
    days: int


AGENTS = [
    Agent(name="echo", instructions="Be brief.", usage_handler=record_usage, throttle_ms=20),
    Agent(name="tools", instructions="Use tools.", tools=[weather, boom, approve], max_steps=4, throttle_ms=20),
    Agent(name="planner", instructions="JSON only.", output=Plan, throttle_ms=10),
    Agent(name="strict", double_texting="reject"),
    Agent(name="interrupting", double_texting="interrupt"),
    Agent(name="mock", model="mock", throttle_ms=20),
    Agent(name="raw", raw_handler=record_raw),
    Agent(name="resilient", on_worker_death="retry", max_worker_retries=1),
    Agent(name="brief", instructions="Short.", context_budget_chars=40),
    Agent(name="recall", instructions="Use what you remember.", context_options=ContextOptions(
        recent_messages=2, search_options=SearchOptions(limit=3, text_search=True, vector_search=True,
                                                        message_range={"before": 0, "after": 0}))),
]
