"""The Python async client against a real server, with a proxy to break the network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import token_for
from tests.support.tcpproxy import Proxy
from threadline import Client, MutationError, SubscriptionError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def proxy(web: str) -> AsyncIterator[Proxy]:
    p = Proxy(int(web.rsplit(":", 1)[1]))
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/ws"


async def test_subscribe_iterates_values_and_mutate_returns_value(web: str) -> None:
    async with Client(web.replace("http", "ws") + "/ws", token_for("alice")) as c:
        threads = c.subscribe("threads.list")
        assert (await threads.next(5))["page"] == []
        tid = (await c.mutate("threads.create", {"title": "one"}))["threadId"]
        value = await threads.next(5)
        assert [t["threadId"] for t in value["page"]] == [tid]
        seen = []
        async with c.subscribe("messages.list", {"threadId": tid}) as msgs:
            await msgs.next(5)
            await c.mutate("messages.send", {"threadId": tid, "prompt": "a", "generate": False})
            async for v in msgs:
                seen.append([m["text"] for m in v["page"]])
                break
        assert seen == [["a"]]


async def test_errors_surface_as_exceptions(web: str) -> None:
    async with Client(web.replace("http", "ws") + "/ws", token_for("alice")) as c:
        with pytest.raises(MutationError) as info:
            await c.mutate("messages.send", {"threadId": "tmissing", "prompt": "x", "generate": False})
        assert info.value.code == "not_found"
        sub = c.subscribe("threads.get", {"threadId": "tmissing"})
        with pytest.raises(SubscriptionError):
            await sub.next(5)


async def test_bad_token_fails_to_connect(web: str) -> None:
    with pytest.raises(ConnectionError, match="unauthorized"):
        async with Client(web.replace("http", "ws") + "/ws", "bad", backoff=(0.01, 0.05)) as c:
            await c.mutate("threads.create", {})


async def test_reconnects_and_resubscribes_after_a_network_failure(proxy: Proxy, web: str) -> None:
    async with Client(url(proxy.port), token_for("alice"), backoff=(0.02, 0.2)) as c, \
            Client(web.replace("http", "ws") + "/ws", token_for("alice")) as direct:
        tid = (await c.mutate("threads.create", {}))["threadId"]
        msgs = c.subscribe("messages.list", {"threadId": tid})
        await msgs.next(5)
        proxy.cut()
        # written elsewhere while this client is cut off: it sees it after reconnecting
        await direct.mutate("messages.send", {"threadId": tid, "prompt": "while away", "generate": False})
        value = await msgs.wait_for(lambda v: bool(v["page"]), timeout=10)
        assert value["page"][0]["text"] == "while away"
        assert c.connects >= 2


async def test_an_unanswered_mutation_is_resent_with_its_id_and_runs_once(proxy: Proxy) -> None:
    async with Client(url(proxy.port), token_for("alice"), backoff=(0.02, 0.2)) as c:
        tid = (await c.mutate("threads.create", {}))["threadId"]
        proxy.swallow_replies = True  # the mutation reaches the server; its answer is lost
        pending = asyncio.create_task(
            c.mutate("messages.send", {"threadId": tid, "prompt": "exactly once", "generate": False})
        )
        await asyncio.sleep(0.3)
        assert not pending.done()
        proxy.swallow_replies = False
        proxy.cut()
        value = await asyncio.wait_for(pending, 10)
        assert value["order"] == 1
        msgs = c.subscribe("messages.list", {"threadId": tid})
        page = (await msgs.next(5))["page"]
        assert [m["text"] for m in page] == ["exactly once"]


async def test_a_mutation_made_while_disconnected_is_sent_on_reconnect(proxy: Proxy) -> None:
    async with Client(url(proxy.port), token_for("alice"), backoff=(0.2, 0.5)) as c:
        proxy.cut()
        await asyncio.sleep(0.05)
        tid = (await asyncio.wait_for(c.mutate("threads.create", {"title": "offline"}), 10))["threadId"]
        got = c.subscribe("threads.get", {"threadId": tid})
        assert (await got.next(5))["title"] == "offline"


async def test_values_after_the_first_come_as_patches_and_equal_the_whole_results(web: str) -> None:
    async with Client(web.replace("http", "ws") + "/ws", token_for("alice")) as c, \
            Client(web.replace("http", "ws") + "/ws", token_for("alice")) as other:
        tid = (await c.mutate("threads.create", {"title": "patches"}))["threadId"]
        for i in range(3):
            await c.mutate("messages.send", {"threadId": tid, "prompt": f"before {i} " + "x" * 300, "generate": False})
        args = {"threadId": tid, "paginationOpts": {"numItems": 3}}
        sub = c.subscribe("messages.list", args)
        kinds: list[str] = []
        sub.on_frame = lambda frame: kinds.append(frame["type"])
        await sub.next(5)
        for i in range(5):
            await c.mutate("messages.send", {"threadId": tid, "prompt": f"after {i} " + "x" * 300, "generate": False})
            assert sub.value["page"][0]["text"][:7] == f"after {i}"  # read your writes
        assert kinds == ["patch"] * 5
        whole = other.subscribe("messages.list", args)
        assert await whole.next(5) == sub.value

        # a patch that does not start from the value held: the client asks for the whole result again
        for bad in ({"baseVersion": sub.version - 1, "ops": [{"op": "remove", "path": "/page/0"}]},
                    {"baseVersion": sub.version, "ops": [{"op": "remove", "path": "/page/7"}]}):
            c._dispatch({"type": "patch", "id": sub.id, "version": sub.version + 1, **bad})
            assert sub._stale
            async with asyncio.timeout(5):
                while sub._stale:  # until the whole result asked for again is here
                    await asyncio.sleep(0.01)
            assert sub.value == whole.value
        await c.mutate("messages.send", {"threadId": tid, "prompt": "last " + "x" * 300, "generate": False})
        value = await sub.wait_for(lambda v: v["page"][0]["text"].startswith("last"))
        assert value == await whole.wait_for(lambda v: v["page"][0]["text"].startswith("last"))
        assert len(value["page"]) == 3
