"""Connect, ping, and every bad-input rule of the WebSocket protocol."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.conftest import token_for
from tests.support.wsutil import open_raw, recv, send, until

pytestmark = pytest.mark.anyio


def ws_url(base: str) -> str:
    return base.replace("http", "ws") + "/ws"


async def closed_with(ws, code: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == code


async def test_connect_answers_connected_with_user_and_session(web: str) -> None:
    async with websockets.connect(ws_url(web)) as ws:
        await send(ws, {"type": "connect", "protocol": 1, "token": token_for("alice"), "clientId": "tab"})
        frame = await recv(ws)
        assert frame["type"] == "connected" and frame["userId"] == "alice"
        assert frame["sessionId"] and isinstance(frame["serverTime"], int)


async def test_bad_token_gets_unauthorized_and_close_4401(web: str) -> None:
    async with websockets.connect(ws_url(web)) as ws:
        await send(ws, {"type": "connect", "protocol": 1, "token": "nope", "clientId": "tab"})
        assert (await recv(ws))["code"] == "unauthorized"
        await closed_with(ws, 4401)


@pytest.mark.parametrize("first", [
    {"type": "subscribe", "id": "x", "query": "threads.list"},
    {"type": "connect", "protocol": 1, "token": "t"},
    {"type": "connect", "protocol": 1, "token": "t", "clientId": "x" * 65},
    {"type": "connect", "protocol": 9, "token": "t", "clientId": "c"},
    "not json",
    '{"type":"connect","protocol":1,"token":"t","clientId":"c","x":' + "[" * 10_000 + "]" * 10_000 + "}",
    '{"type":"connect","protocol":1,"token":"t","clientId":"c","x":"' + "x" * (2 << 20) + '"}',
])
async def test_any_other_first_frame_is_bad_request_and_close_4400(web: str, first: object) -> None:
    async with websockets.connect(ws_url(web)) as ws:
        await ws.send(first if isinstance(first, str) else json.dumps(first))
        assert (await recv(ws))["code"] == "bad_request"
        await closed_with(ws, 4400)


async def test_ping_is_answered_with_the_same_t(web: str) -> None:
    ws = await open_raw(web)
    await send(ws, {"type": "ping", "t": {"any": [1, 2]}})
    assert await recv(ws) == {"type": "pong", "t": {"any": [1, 2]}}
    await ws.close()


async def usable(ws) -> None:  # type: ignore[no-untyped-def]
    await send(ws, {"type": "ping", "t": "still here"})
    assert (await recv(ws))["t"] == "still here"


async def test_malformed_json_and_unknown_frames_keep_the_connection(web: str) -> None:
    ws = await open_raw(web)
    for bad in ("{oops", "[]", json.dumps({"type": "launch"}), json.dumps({"no": "type"})):
        await ws.send(bad)
        frame = await recv(ws)
        assert (frame["type"], frame["code"]) == ("error", "bad_request")
    await ws.send(b"binary")
    assert (await recv(ws))["code"] == "bad_request"
    await send(ws, {"type": "connect", "protocol": 1, "token": token_for("alice"), "clientId": "again"})
    assert (await recv(ws))["code"] == "bad_request"
    await usable(ws)
    await ws.close()


async def test_unknown_query_and_mutation_are_errors_with_the_id(web: str) -> None:
    ws = await open_raw(web)
    await send(ws, {"type": "subscribe", "id": "q1", "query": "users.all", "args": {}})
    frame = await recv(ws)
    assert (frame["type"], frame["id"], frame["code"]) == ("error", "q1", "bad_request")
    await send(ws, {"type": "mutate", "id": "m1", "name": "users.drop", "args": {}})
    frame = await recv(ws)
    assert (frame["type"], frame["id"], frame["ok"], frame["error"]["code"]) == ("mutated", "m1", False, "bad_request")
    await usable(ws)
    await ws.close()


async def test_wrong_argument_types_name_the_field(web: str) -> None:
    ws = await open_raw(web)
    await send(ws, {"type": "subscribe", "id": "q", "query": "messages.list",
                    "args": {"threadId": "t1", "paginationOpts": {"numItems": "ten"}}})
    frame = await recv(ws)
    assert frame["code"] == "bad_request" and "numItems" in frame["message"]
    await send(ws, {"type": "mutate", "id": "m", "name": "threads.create", "args": {"title": ["x"]}})
    frame = await recv(ws)
    assert frame["error"]["code"] == "bad_request" and "title" in frame["error"]["message"]
    await send(ws, {"type": "mutate", "id": "m2", "name": "threads.create", "args": "nope"})
    frame = await recv(ws)
    assert frame["type"] == "mutated" and frame["error"]["code"] == "bad_request"
    await usable(ws)
    await ws.close()


async def test_frames_over_1_mib_get_too_large_up_to_the_transport_limit(web: str) -> None:
    ws = await open_raw(web)
    for size in (1 << 20, 5 << 20, 15 << 20):
        await ws.send(json.dumps({"type": "mutate", "id": f"big-{size}", "name": "threads.create",
                                  "args": {"title": "x" * size}}))
        frame = await recv(ws)
        assert (frame["type"], frame["id"], frame["ok"], frame["error"]["code"]) == (
            "mutated", f"big-{size}", False, "too_large")
    await ws.send(json.dumps({"type": "subscribe", "id": "big-sub", "query": "threads.list",
                              "args": {"pad": "x" * (2 << 20)}}))
    frame = await recv(ws)
    assert (frame["type"], frame["code"], frame.get("id")) == ("error", "too_large", "big-sub")
    await usable(ws)
    await ws.close()


async def test_frames_past_the_transport_limit_get_too_large_and_the_connection_stays(web: str) -> None:
    """Over 16 MiB the transport skips the message as it arrives (it was closed with 1009): in one
    frame, or in fragments whose sum is over (the first of them handed on, the rest skipped)."""
    ws = await open_raw(web)
    for size in (17 << 20, 40 << 20):
        await ws.send(json.dumps({"type": "mutate", "id": f"huge-{size}", "name": "threads.create",
                                  "args": {"title": "x" * size}}))
        frame = await recv(ws, 30)
        assert (frame["type"], frame["id"], frame["error"]["code"]) == ("mutated", f"huge-{size}", "too_large"), frame
        await usable(ws)
    head = json.dumps({"type": "mutate", "id": "in-pieces", "name": "threads.create", "args": {"title": ""}})[:-3]
    await ws.send([head, *("y" * (4 << 20) for _ in range(6)), '"}}'])  # 24 MiB in 8 fragments
    frame = await recv(ws, 30)
    assert (frame["type"], frame["id"], frame["error"]["code"]) == ("mutated", "in-pieces", "too_large"), frame
    await ws.send("{" + " " * (20 << 20) + "}")  # no type or id in reach: a plain error
    frame = await recv(ws, 30)
    assert (frame["type"], frame["code"]) == ("error", "too_large"), frame
    await usable(ws)
    await ws.close()


async def test_every_unreadable_mutate_is_answered_by_its_id(web: str) -> None:
    ws = await open_raw(web)
    deep = "[" * 5000 + "]" * 5000
    bad = {
        "surrogate": '{"type":"mutate","id":"surrogate","name":"threads.create","args":{"title":"x\\ud800"}}',
        "deep": '{"type":"mutate","id":"deep","name":"threads.create","args":{"metadata":{"a":' + deep + "}}}",
        "deep-70": '{"type":"mutate","id":"deep-70","name":"threads.create","args":{"metadata":{"a":'
                   + "[" * 70 + "]" * 70 + "}}}",
        "huge-order": '{"type":"mutate","id":"huge-order","name":"messages.send",'
                      '"args":{"threadId":"t1","prompt":"x","order":1000000000000000000000000000000}}',
    }
    for rid, raw in bad.items():
        await ws.send(raw)
        frame = await until(ws, lambda f, rid=rid: f.get("id") == rid)
        assert (frame["type"], frame["ok"], frame["error"]["code"]) == ("mutated", False, "bad_request"), frame
    await ws.send(json.dumps({"type": "subscribe", "id": "deep-sub", "query": "threads.list",
                              "args": {"x": json.loads("[" * 100 + "]" * 100)}}))
    frame = await until(ws, lambda f: f.get("id") == "deep-sub")
    assert (frame["type"], frame["code"]) == ("error", "bad_request")
    await usable(ws)
    await ws.close()


async def test_cursors_and_counts_accept_ascii_digits_in_range_only(web: str) -> None:
    ws = await open_raw(web)
    await send(ws, {"type": "mutate", "id": "mk", "name": "threads.create", "args": {}})
    tid = (await until(ws, lambda f: f.get("id") == "mk"))["value"]["threadId"]
    cases = [{"cursor": "\u00b2"}, {"cursor": "9" * 20}, {"cursor": "-1"}, {"cursor": "1e5"},
             {"numItems": 10 ** 30}, {"numItems": 0}]
    for i, opts in enumerate(cases):
        await ws.send(json.dumps({"type": "subscribe", "id": f"c{i}", "query": "messages.list",
                                  "args": {"threadId": tid, "paginationOpts": opts}}))
        frame = await until(ws, lambda f, i=i: f.get("id") == f"c{i}")
        assert (frame["type"], frame["code"]) == ("error", "bad_request"), (opts, frame)
        assert "storage" not in frame["message"].lower()
    for i, order in enumerate((10 ** 30, 2 ** 63, -1, 2 ** 31)):
        await send(ws, {"type": "mutate", "id": f"o{i}", "name": "messages.send",
                        "args": {"threadId": tid, "prompt": "x", "generate": False, "order": order}})
        frame = await until(ws, lambda f, i=i: f.get("id") == f"o{i}")
        assert frame["error"]["code"] == "bad_request", frame
    await usable(ws)
    await ws.close()


async def test_more_than_200_subscriptions_are_refused(web: str) -> None:
    ws = await open_raw(web)
    for i in range(201):
        await send(ws, {"type": "subscribe", "id": f"s{i}", "query": "threads.list",
                        "args": {"paginationOpts": {"numItems": 1 + i % 100}}})
    frames = [await recv(ws) for _ in range(201)]
    errors = [f for f in frames if f["type"] == "error"]
    assert len(errors) == 1 and errors[0]["id"] == "s200" and "200" in errors[0]["message"]
    await usable(ws)
    await ws.close()


async def test_duplicate_subscription_id_is_refused(web: str) -> None:
    ws = await open_raw(web)
    sub = {"type": "subscribe", "id": "same", "query": "threads.list", "args": {}}
    await send(ws, sub)
    assert (await recv(ws))["type"] == "result"
    await send(ws, sub)
    frame = await recv(ws)
    assert (frame["type"], frame["id"]) == ("error", "same")
    await ws.close()


async def test_a_flood_of_bad_frames_closes_the_connection(web: str) -> None:
    ws = await open_raw(web)
    for _ in range(60):
        await ws.send("{bad")
    await closed_with(ws, 4429)


async def test_an_expired_token_closes_the_connection(web: str) -> None:
    async with websockets.connect(ws_url(web)) as ws:
        token = token_for("alice", ttl_s=1)
        await send(ws, {"type": "connect", "protocol": 1, "token": token, "clientId": "short"})
        assert (await recv(ws))["type"] == "connected"
        frame = await recv(ws, timeout=5)
        assert (frame["type"], frame["code"]) == ("error", "unauthorized")
        await closed_with(ws, 4401)
