"""The AI SDK's npm packages the conformance tests run: the 6.x line on the machine's Node 20
(tests/node) and the current major, ai 7, on the Node 22 that npm's ``node`` package brings
(tests/node/ai7). The scripts in tests/node load whichever ``AI_SDK_MODULE`` names."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.procs import ROOT

NODE_DIR = ROOT / "tests" / "node"
AI7_DIR = NODE_DIR / "ai7"
SDKS = {"ai6": ("node", {}),
        "ai7": (str(AI7_DIR / "node_modules" / ".bin" / "node"), {"AI_SDK_MODULE": (AI7_DIR / "sdk.mjs").as_uri()})}


def run_node(sdk: str, script: str, *args: str, stdin: bytes | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """``script`` of tests/node with the SDK ``sdk`` (a key of SDKS)."""
    node, env = SDKS[sdk]
    if shutil.which(node) is None or not (NODE_DIR / "node_modules" / "ai").exists() \
            or not (AI7_DIR / "node_modules" / "ai").exists():
        pytest.fail("node and tests/node's packages are needed: scripts/test installs them (npm ci)")
    return subprocess.run([node, script, *args], cwd=NODE_DIR, input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, **env})
