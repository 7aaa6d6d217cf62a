from __future__ import annotations

from typing import Any

from tests.support.stack import SECRET
from tests.support.wsutil import Tab


def token(user: str) -> str:
    from threadline.shared.auth import mint

    return mint(SECRET, user)


async def open_tab(base: str, user: str = "alice", client_id: str = "tab") -> Tab:
    import json

    import websockets

    from tests.support.wsutil import recv

    ws = await websockets.connect(base.replace("http", "ws") + "/ws", max_size=None)
    await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": token(user), "clientId": client_id}))
    assert (await recv(ws))["type"] == "connected"
    return Tab(ws)


def delta_text(deltas: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for d in deltas for p in d["parts"] if p["type"] == "text")


def assert_gapless(deltas: list[dict[str, Any]], start: int = 1) -> None:
    seqs = [d["seq"] for d in deltas]
    assert seqs == list(range(start, start + len(seqs))), seqs


def reply_of(value: dict[str, Any], order: int, statuses: tuple[str, ...] = ("success", "failed")) -> Any:
    """The last assistant message of ``order`` once it has ended."""
    done = [m for m in value["page"] if m["order"] == order and m["role"] == "assistant"
            and m["status"] in statuses]
    return max(done, key=lambda m: m["stepOrder"]) if done else None


async def new_thread(tab: Tab) -> str:
    frame = await tab.mutate("threads.create", {"title": "gen"})
    assert frame["ok"], frame
    return frame["value"]["threadId"]


def watch_args(thread_id: str, **extra: Any) -> dict[str, Any]:
    return {"threadId": thread_id, "streams": True, "paginationOpts": {"numItems": 50}, **extra}
