"""The browser client module where there is no browser (server-side rendering, React Native, Node):
importing it and making a client touch no browser-only global (sessionStorage, crypto, WebSocket
on a platform without one)."""

from __future__ import annotations

import json

import pytest

from tests.support.ai_sdk import SDKS, run_node
from tests.support.procs import ROOT

CLIENT = ROOT / "server" / "static" / "client.js"


@pytest.mark.parametrize("node", list(SDKS))  # Node 20 (no WebSocket global) and Node 22 (one)
def test_a_client_is_made_without_a_browser(node: str) -> None:
    done = run_node(node, "ssr_client.mjs", CLIENT.as_uri(), timeout=30)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    seen = json.loads(done.stdout)
    assert seen["clientId"].startswith("tab-")
    # without a WebSocket there is nothing to connect with: the client says closed, it does not throw
    assert seen["statuses"] == (["connecting"] if seen["hasWebSocket"] else ["closed"])
