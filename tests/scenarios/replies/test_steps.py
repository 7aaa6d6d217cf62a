"""Steps under the app's control, in a worker against the scripted model: stop conditions end a
reply after the step that meets them, and prepare_step changes each model call."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scenarios.replies.test_agents import by_step, run_prompt
from tests.support.stack import Stack

pytestmark = pytest.mark.anyio


def tools(*names: str) -> dict[str, Any]:
    return {"kind": "tools", "calls": [{"name": n, "arguments": '{"city": "Oslo"}' if n == "weather" else "{}"}
                                       for n in names]}


async def test_a_tool_named_in_stop_when_ends_the_reply_and_prepare_step_shapes_each_call(llm: Stack) -> None:
    llm.script(tools("weather"), tools("whoami"), {"kind": "text", "chunks": ["never asked for"]})
    tab, _, frame = await run_prompt(llm, "stepper", "weather, then who?")
    assert frame["value"]["streams"][-1]["status"] == "finished"
    steps = by_step(frame["value"])
    assert [(m["role"], m["status"]) for m in steps] == [
        ("user", "success"), ("assistant", "success"), ("tool", "success"), ("assistant", "success"),
        ("tool", "success")]
    assert steps[1]["model"] == "fake-small" and steps[3]["model"] == "fake"
    first, second = llm.llm_requests()  # no third call: whoami met the stop condition
    assert first["model"] == "fake-small" and [t["function"]["name"] for t in first["tools"]] == ["weather"]
    assert first["messages"][0] == {"role": "system", "content": "First, the weather."}
    assert second["model"] == "fake" and second["temperature"] == 0.0 and second["seed"] == 7
    assert sorted(t["function"]["name"] for t in second["tools"]) == ["weather", "whoami"]
    assert [m["role"] for m in second["messages"]] == ["system", "assistant", "tool"]  # the last exchange only
    await tab.close()


async def test_a_step_count_stops_the_reply_before_max_steps(llm: Stack) -> None:
    llm.script(tools("weather"), tools("weather"), tools("weather"))
    tab, _, frame = await run_prompt(llm, "counted")
    assert frame["value"]["streams"][-1]["status"] == "finished"
    assert [m["role"] for m in by_step(frame["value"])] == ["user", "assistant", "tool", "assistant", "tool"]
    assert len(llm.llm_requests()) == 2
    await tab.close()


async def test_a_predicate_over_the_steps_stops_the_reply(llm: Stack) -> None:
    llm.script({"kind": "tools", "chunks": ["not yet"], "calls": [{"name": "weather", "arguments": '{"city": "A"}'}]},
               {"kind": "tools", "chunks": ["that is enough"], "calls": [{"name": "weather", "arguments": '{"city": "B"}'}]},
               tools("weather"))
    tab, _, frame = await run_prompt(llm, "stop-on-text")
    assert frame["value"]["streams"][-1]["status"] == "finished"
    assert len(llm.llm_requests()) == 2
    await tab.close()


async def test_a_plan_the_agent_cannot_follow_fails_the_reply_with_what_is_wrong(llm: Stack) -> None:
    tab, _, frame = await run_prompt(llm, "bad-plan")
    reply = next(m for m in frame["value"]["page"] if m["role"] == "assistant")
    assert reply["status"] == "failed"
    assert reply["error"] == "prepare_step names a tool the agent does not have: 'nope'"
    assert llm.llm_requests() == []
    await tab.close()
