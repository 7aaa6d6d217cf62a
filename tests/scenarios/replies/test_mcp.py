"""Tools from MCP servers built with the official SDK (tests/support/mcp_server.py), called by a
worker: one server over stdio (a child of the worker, kept from reply to reply) and one over
streamable HTTP; failures, timeouts and an unreachable server are what the model sees, never a
failed reply."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scenarios.replies.test_agents import by_step, run_prompt
from tests.support import procs
from tests.support.stack import Stack, run_stack
from threadline.shared.storage.embedded import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def mcp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("mcp")
    port = free_port()
    with open(tmp / "mcp.log", "ab") as out:
        remote = subprocess.Popen([sys.executable, "-m", "tests.support.mcp_server", "--http", str(port)],
                                  cwd=procs.ROOT, env=procs.child_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        procs.wait_for_port(port, remote)
        # (a worker's first MCP call imports the SDK and starts the stdio server: on a loaded machine its
        # heartbeat may pause past the stack's 3 s stale mark, and the reaper aborted the reply once)
        env = {"TEST_MCP_URL": f"http://127.0.0.1:{port}/mcp", "STREAM_STALE_MS": "20000"}
        with run_stack(tmp / "stack", workers=1, env=env) as stack:
            yield stack
    finally:
        procs.stop(remote)


@pytest.fixture
def llm(mcp_stack: Stack) -> Stack:
    mcp_stack.reset_llm()
    return mcp_stack


def calls(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"kind": "tools", "calls": [{"name": name, "arguments": args} for name, args in pairs]}


def results(frame: dict[str, Any]) -> list[tuple[Any, bool]]:
    return [(m["parts"][0]["result"], m["parts"][0]["isError"]) for m in by_step(frame["value"]) if m["role"] == "tool"]


async def test_a_reply_calls_tools_of_a_stdio_and_an_http_server(llm: Stack) -> None:
    llm.script(calls(("calc_add", '{"a": 2, "b": 3}'), ("remote_shout", '{"text": "hi"}')),
               {"kind": "text", "chunks": ["5 and HI."]})
    tab, _, frame = await run_prompt(llm, "mcp-user")
    assert frame["value"]["streams"][-1]["status"] == "finished"
    assert results(frame) == [({"result": 5}, False), ({"result": "HI"}, False)]  # (the SDK structures both)
    offered = sorted(t["function"]["name"] for t in llm.llm_requests()[0]["tools"])
    assert offered == ["calc_add", "calc_fail", "calc_pid", "calc_shout", "calc_slow", "remote_shout"]
    add = next(t["function"] for t in llm.llm_requests()[0]["tools"] if t["function"]["name"] == "calc_add")
    assert add["description"] == "Adds two whole numbers." and set(add["parameters"]["properties"]) == {"a", "b"}
    await tab.close()


async def test_failures_and_timeouts_are_error_results_the_model_sees(llm: Stack) -> None:
    llm.script(calls(("calc_fail", '{"reason": "the printer is on fire"}'), ("calc_slow", '{"seconds": 30}'),
                     ("calc_add", '{"a": "two"}')),
               calls(("calc_shout", '{"text": "still here"}')), {"kind": "text", "chunks": ["Sorry."]})
    tab, _, frame = await run_prompt(llm, "mcp-user")
    assert frame["value"]["streams"][-1]["status"] == "finished"
    (fail, fail_err), (slow, slow_err), (bad, bad_err), (after, after_err) = results(frame)
    assert fail_err and "the printer is on fire" in fail
    assert slow_err and "did not answer in 10 s" in slow
    assert bad_err and "a" in bad
    assert (after, after_err) == ({"result": "STILL HERE"}, False)  # the session goes on after a timed-out call
    await tab.close()


async def test_the_stdio_server_is_one_process_kept_from_reply_to_reply(llm: Stack) -> None:
    seen = []
    for _ in range(2):
        llm.script(calls(("calc_pid", "{}")), {"kind": "text", "chunks": ["ok"]})
        tab, _, frame = await run_prompt(llm, "mcp-user")
        ((pid, is_error),) = results(frame)
        assert not is_error
        seen.append(pid["result"])
        await tab.close()
    assert seen[0] == seen[1]
    assert Path(f"/proc/{seen[0]}").exists()  # a child of the worker, running


async def test_an_unreachable_server_leaves_its_tools_out_and_the_reply_answers(llm: Stack) -> None:
    tab, _, frame = await run_prompt(llm, "mcp-nowhere", "hello")
    reply = next(m for m in frame["value"]["page"] if m["role"] == "assistant")
    assert reply["status"] == "success" and reply["text"] == "echo: hello"
    assert "tools" not in llm.llm_requests()[0] or not llm.llm_requests()[0]["tools"]
    await tab.close()
