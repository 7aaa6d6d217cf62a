"""Memory and flood limits of a WebSocket session, against a real web process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import TEST_SECRET, admin_headers, token_for
from tests.support import procs
from tests.support.wsutil import open_raw, send

pytestmark = pytest.mark.anyio


@pytest.fixture
def own_web(redis_url: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A web process of this test alone: (pid, base URL)."""
    proc, port = procs.start_web(redis_url, auth_secret=TEST_SECRET, log=tmp_path / "web.log",
                                 extra_env={"WS_SEND_QUEUE_BYTES": str(4 << 20), "RATE_LIMIT_SENDS_PER_MINUTE": "0"})
    try:
        yield proc.pid, f"http://127.0.0.1:{port}"
    finally:
        procs.stop(proc)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def established(server_port: int, client_port: int) -> bool:
    """Whether the server's end of the client's TCP connection is still ESTABLISHED."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if (int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port
                    and state == "01"):
                return True
    return False


def stats(base: str) -> dict[str, int]:
    return httpx.get(f"{base}/api/stats", headers=admin_headers()).json()


def big_thread(base: str) -> str:
    auth = {"Authorization": f"Bearer {token_for('alice')}"}
    tid = httpx.post(f"{base}/api/threads", json={}, headers=auth).json()["threadId"]
    for i in range(100):
        httpx.post(f"{base}/api/threads/{tid}/messages", headers=auth,
                   json={"prompt": f"{i} " + "x" * 20_000, "generate": False}).raise_for_status()
    return tid


@pytest.mark.timeout(120)
async def test_a_client_that_stops_reading_is_dropped_with_bounded_memory(own_web: tuple[int, str]) -> None:
    pid, base = own_web
    tid = await asyncio.to_thread(big_thread, base)
    server_port = int(base.rsplit(":", 1)[1])
    ws = await open_raw(base, max_queue=1)  # the client stops reading its socket after one frame
    client_port = ws.transport.get_extra_info("sockname")[1]  # type: ignore[attr-defined]
    before = rss_mb(pid)
    ws.transport.pause_reading()  # type: ignore[attr-defined]
    for i in range(150):  # each result is ~2 MB: 300 MB if the server kept them all
        await send(ws, {"type": "subscribe", "id": f"s{i}", "query": "messages.list",
                        "args": {"threadId": tid, "paginationOpts": {"numItems": 100 - i % 3}}})
    peak = before
    async with asyncio.timeout(60):
        while established(server_port, client_port):
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.05)
    peak = max(peak, rss_mb(pid))
    print(f"web RSS before {before:.1f} MB, peak {peak:.1f} MB")
    assert peak - before < 64
    async with asyncio.timeout(10):
        while stats(base)["sessions"] or stats(base)["liveQueries"]:
            await asyncio.sleep(0.05)
    ws.transport.abort()  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
async def test_a_burst_of_frames_closes_with_4429_and_releases_everything(own_web: tuple[int, str]) -> None:
    _, base = own_web
    auth = {"Authorization": f"Bearer {token_for('alice')}"}
    tids = [httpx.post(f"{base}/api/threads", json={}, headers=auth).json()["threadId"] for _ in range(5)]
    baseline = stats(base)
    for burst in range(10):
        ws = await open_raw(base, client_id=f"burst-{burst}")
        frames = [json.dumps({"type": "subscribe", "id": f"b{i}", "query": "messages.list",
                              "args": {"threadId": tids[i % 5], "streams": i % 2 == 0}}) for i in range(300)]
        for frame in frames:  # in one write: the server reads them all before it runs one, however loaded
            ws.protocol.send_text(frame.encode())
        ws.transport.write(b"".join(ws.protocol.data_to_send()))
        try:
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
        except websockets.ConnectionClosed:
            pass
        assert ws.close_code == 4429, ws.close_code
    async with asyncio.timeout(10):
        while True:
            now = stats(base)
            if (now["sessions"], now["liveQueries"], now["channels"]) == (
                    0, baseline["liveQueries"], baseline["channels"]):
                break
            await asyncio.sleep(0.05)
