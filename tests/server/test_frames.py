"""Every server frame as PROTOCOL.md gives it, built by server.frames only."""

from __future__ import annotations

import json

import msgspec

from threadline.server import frames
from threadline.shared.errors import BadRequest, RateLimited


def test_websocket_frames() -> None:
    assert json.loads(frames.connected("u", "s1", 5)) == {"type": "connected", "userId": "u", "sessionId": "s1",
                                                          "serverTime": 5}
    assert json.loads(frames.pong({"a": 1})) == {"type": "pong", "t": {"a": 1}}
    assert json.loads(frames.pong(None)) == {"type": "pong", "t": None}
    assert json.loads(frames.result("q1", 3, '{"x":[1]}')) == {"type": "result", "id": "q1", "version": 3,
                                                               "value": {"x": [1]}}
    assert json.loads(frames.delta("q1", "t1-s1", 4, '[{"type":"text","text":"hi"}]')) == {
        "type": "delta", "id": "q1", "streamId": "t1-s1", "seq": 4, "parts": [{"type": "text", "text": "hi"}]}


def test_the_fan_out_frames_are_their_structs() -> None:
    value, parts = '{"page":[{"text":"a \\"b\\""}]}', '[{"type":"text","text":"x"}]'
    for sub_id in ("q1", 'we"ird\\id', "ünï"):
        assert json.loads(frames.result(sub_id, 7, value)) == json.loads(msgspec.json.encode(
            frames.Result(id=sub_id, version=7, value=msgspec.Raw(value))))
        assert json.loads(frames.delta(sub_id, "t1-s1", 2, parts)) == json.loads(msgspec.json.encode(
            frames.Delta(id=sub_id, stream_id="t1-s1", seq=2, parts=msgspec.Raw(parts))))
        ops = '[{"op":"remove","path":"/page/0"}]'
        assert json.loads(frames.patch(sub_id, 8, 7, ops)) == json.loads(msgspec.json.encode(
            frames.Patch(id=sub_id, version=8, base_version=7, ops=msgspec.Raw(ops))))


def test_errors_leave_out_what_they_do_not_have() -> None:
    assert json.loads(frames.error(BadRequest("bad"))) == {"type": "error", "code": "bad_request", "message": "bad"}
    limited = RateLimited("slow down", retry_after_ms=1500)
    assert json.loads(frames.error(limited, "q1")) == {"type": "error", "id": "q1", "code": "rate_limited",
                                                       "message": "slow down", "retryAfterMs": 1500}


def test_mutated_frames() -> None:
    assert json.loads(frames.mutated("r1", value=b'{"messageId":"m"}', version=9)) == {
        "type": "mutated", "id": "r1", "ok": True, "value": {"messageId": "m"}, "version": 9}
    assert json.loads(frames.mutated_error("r1", BadRequest("no"))) == {
        "type": "mutated", "id": "r1", "ok": False, "error": {"code": "bad_request", "message": "no"}}
    assert json.loads(frames.mutated_error("r1", {"code": "conflict", "message": "x"}))["error"]["code"] == "conflict"


def test_sse_events() -> None:
    assert frames.sse_delta(2, b'[{"type":"text","text":"a"}]') == (
        b'id: 2\nevent: delta\ndata: {"seq":2,"parts":[{"type":"text","text":"a"}]}\n\n')
    assert frames.sse_end("finished", 2) == b'event: end\ndata: {"status":"finished","seq":2}\n\n'
