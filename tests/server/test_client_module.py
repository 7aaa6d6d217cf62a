"""The browser client module where there is no browser (server-side rendering, React Native, Node):
importing it and making a client touch no browser-only global (sessionStorage, crypto, WebSocket
on a platform without one)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from tests.conftest import token_for
from tests.shared.test_patches import mutate, page
from tests.support.ai_sdk import SDKS, run_node
from tests.support.procs import ROOT
from tests.support.wsutil import Tab
from threadline.shared.patches import diff

CLIENT = ROOT / "server" / "static" / "client.js"


@pytest.mark.parametrize("node", list(SDKS))  # Node 20 (no WebSocket global) and Node 22 (one)
def test_a_client_is_made_without_a_browser(node: str) -> None:
    done = run_node(node, "ssr_client.mjs", CLIENT.as_uri(), timeout=30)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    seen = json.loads(done.stdout)
    assert seen["clientId"].startswith("tab-")
    # without a WebSocket there is nothing to connect with: the client says closed, it does not throw
    assert seen["statuses"] == (["connecting"] if seen["hasWebSocket"] else ["closed"])


def test_apply_patch_reproduces_what_the_server_diffs_and_leaves_the_value_alone() -> None:
    rng = random.Random(7)
    next_id = [20]
    value, cases = page(list(range(20, 0, -1))), []
    for _ in range(300):
        new = mutate(rng, value, next_id)
        cases.append({"value": value, "ops": diff(value, new), "expected": new})
        value = new
    done = run_node("ai6", "apply_patches.mjs", CLIENT.as_uri(), stdin=json.dumps(cases).encode(), timeout=30)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = json.loads(done.stdout)
    assert [o["result"] for o in out] == [c["expected"] for c in cases]
    assert all(o["untouched"] for o in out)


@pytest.mark.anyio
async def test_the_client_keeps_a_live_query_by_patches_against_a_real_server(web: str) -> None:
    tab = await Tab.open(web, client_id="plain")
    tid = (await tab.mutate("threads.create", {}))["value"]["threadId"]
    for i in range(3):
        await tab.mutate("messages.send", {"threadId": tid, "prompt": f"py {i} " + "x" * 300, "generate": False})
    done = await asyncio.to_thread(run_node, "ai7", "patch_client.mjs", CLIENT.as_uri(),
                                   web.replace("http", "ws") + "/ws", token_for("alice"), tid, "6", timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    seen = json.loads(done.stdout)
    assert seen["kinds"]["patch"] == 6 and seen["kinds"]["result"] == 1 and seen["values"] == 7
    assert seen["intact"]  # a value handed to the app never changed afterwards
    assert seen["shared"] == 6 * 2  # each step kept the two records it did not change, by reference
    whole = await tab.subscribe("q", "messages.list", {"threadId": tid, "paginationOpts": {"numItems": 3}})
    assert seen["last"] == whole["value"]
    await tab.close()
