"""Live-query bytes benchmark (prints figures): what one change costs each subscriber of a 50-message
page, for a tab that takes patches and one that takes whole results, with the stack as `scripts/run`
starts it (a web process, a generation worker, the mock model at 0 ms, 40 words a reply).

- a new message (about 550 bytes of JSON) saved without a reply: bytes to each tab, and the ratio to
  the message's own JSON (target for patches: <= 2x);
- one exchange (a prompt and a 40-word reply, deltas included): bytes to each tab.

    .venv/bin/python -m bench.patches
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import uvloop
import websockets

from bench.generation import Tab, run
from bench.support import redis_url
from tests.support import procs
from threadline.shared.patches import apply

RUNS = int(os.environ.get("BENCH_RUNS", "10"))
USER = "bytes"
PROMPT = "a prompt of about the size of a short paragraph, " * 6


class CountingTab(Tab):
    """A raw connection that counts the bytes of every frame it receives (``frames`` holds (bytes,
    frame)) and keeps its one subscription's value, patches applied."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.value: Any = None
        super().__init__(ws)

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            self.frames.append((len(raw), frame))
            if frame["type"] == "result":
                self.value = frame["value"]
            elif frame["type"] == "patch":
                self.value = apply(self.value, frame["ops"])
            self.event.set()

    async def until(self, pred: Any, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred(self):
                self.event.clear()
                await self.event.wait()

    def take_bytes(self) -> int:
        n = sum(size for size, _ in self.frames)
        self.frames.clear()
        return n


def holds(order: int, role: str) -> Any:
    """Whether a tab's value holds the finished message at ``order`` of ``role``."""
    def pred(tab: CountingTab) -> bool:
        return tab.value is not None and any(
            m["order"] == order and m["role"] == role and m["status"] == "success" for m in tab.value["page"])
    return pred


async def measure(url: str) -> dict[str, dict[str, float]]:
    patching, plain = await CountingTab.open(url, USER, "patching"), await CountingTab.open(url, USER, "plain")
    await patching.send({"type": "mutate", "id": "c", "name": "threads.create", "args": {}})
    tid = (await patching.wait(lambda f: f.get("id") == "c"))[1]["value"]["threadId"]
    order = 0

    async def send(prompt: str, generate: bool) -> None:
        nonlocal order
        order += 1
        await patching.send({"type": "mutate", "id": f"m{order}", "name": "messages.send", "args": {
            "threadId": tid, "prompt": prompt, "generate": generate, "agentName": "assistant"}})
        await patching.wait(lambda f: f.get("id") == f"m{order}")

    for i in range(50):
        await send(f"note {i}: {PROMPT}", False)
    args = {"threadId": tid, "streams": True, "paginationOpts": {"numItems": 50}}
    for tab, patches in ((patching, True), (plain, False)):
        await tab.send({"type": "subscribe", "id": "q", "query": "messages.list", "args": args, "patches": patches})
        await tab.wait(lambda f: f.get("id") == "q")
    figures: dict[str, dict[str, list[float]]] = {"message": {}, "exchange": {}}
    for run_ in range(RUNS):
        for tab in (patching, plain):
            tab.take_bytes()
        await send(f"new {run_}: {PROMPT}", False)
        await plain.until(holds(order, "user"))
        message = len(json.dumps(plain.value["page"][0], separators=(",", ":")))
        await patching.until(holds(order, "user"))
        for name, tab in (("patches", patching), ("results", plain)):
            figures["message"].setdefault(name, []).append(tab.take_bytes())
        figures["message"].setdefault("json", []).append(message)
        await send(f"ask {run_}: {PROMPT}", True)
        for name, tab in (("patches", patching), ("results", plain)):
            await tab.until(holds(order, "assistant"))
            await asyncio.sleep(0.05)  # the stream's last frames
            figures["exchange"].setdefault(name, []).append(tab.take_bytes())
    for tab in (patching, plain):
        await tab.ws.close()
    return {kind: {name: statistics.median(v) for name, v in by.items()} for kind, by in figures.items()}


async def main() -> None:
    with redis_url() as redis, tempfile.TemporaryDirectory() as tmp:
        url, web, worker = await run(redis, Path(tmp), 0, 40, 1)  # type: ignore[misc]
        try:
            got = await measure(url)
        finally:
            procs.stop(worker)
            procs.stop(web)
    m, x = got["message"], got["exchange"]
    print(f"a new message ({m['json']:.0f} bytes of JSON) on a 50-message page, bytes to each subscriber (median "
          f"of {RUNS}): patches {m['patches']:,.0f} ({m['patches'] / m['json']:.2f}x the message, target <= 2x); "
          f"whole results {m['results']:,.0f} ({m['results'] / m['json']:.1f}x)")
    print(f"one exchange (prompt + 40-word reply), bytes to each subscriber: patches {x['patches']:,.0f}; "
          f"whole results {x['results']:,.0f} ({x['results'] / x['patches']:.1f}x)")


if __name__ == "__main__":
    uvloop.run(main())
