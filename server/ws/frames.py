"""Protocol frames. Client frames are one tagged union decoded once; server frames
that fan out (result) are assembled from a value encoded once per change."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from server.args import Id
from server.idempotency import StoredOutcome
from shared.errors import ChatError
from shared.json_depth import top_level_strings

PROTOCOL_VERSION = 1
MAX_FRAME = 1 << 20

ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Frame(msgspec.Struct, tag_field="type", rename="camel", kw_only=True, forbid_unknown_fields=False):
    pass


class Connect(_Frame, tag="connect"):
    protocol: int
    token: str
    client_id: ClientId


class Ping(_Frame, tag="ping"):
    t: Any = None


class Subscribe(_Frame, tag="subscribe"):
    id: Id
    query: str
    args: msgspec.Raw = msgspec.Raw(b"{}")


class Unsubscribe(_Frame, tag="unsubscribe"):
    id: Id


class Mutate(_Frame, tag="mutate"):
    id: Id
    name: str
    args: msgspec.Raw = msgspec.Raw(b"{}")


ClientFrame = Connect | Ping | Subscribe | Unsubscribe | Mutate
decode_frame = msgspec.json.Decoder(ClientFrame).decode


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    """Enough of a frame that failed to decode to answer it by id."""

    type: Any = None
    id: Any = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_encode = msgspec.json.Encoder().encode


def envelope(raw: str | bytes) -> tuple[str | None, str | None]:
    """(type, id) of a frame that did not decode as a whole, when they can be read.

    Falls back to reading the top-level members alone, so a mutate too deep or with a
    bad escape elsewhere (e.g. a lone surrogate) is still answered by its id.
    """
    try:
        env = _decode_envelope(raw)
        kind, ident = env.type, env.id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        members = top_level_strings(text, ("type", "id"))
        kind, ident = members.get("type"), members.get("id")
    kind = kind if isinstance(kind, str) else None
    ident = ident if isinstance(ident, str) and 0 < len(ident) <= 128 and ident.isprintable() else None
    return kind, ident


def dumps(value: Any) -> str:
    return _encode(value).decode()


def connected(user_id: str, session_id: str, server_time: int) -> str:
    return dumps({"type": "connected", "userId": user_id, "sessionId": session_id, "serverTime": server_time})


def pong(t: Any) -> str:
    return dumps({"type": "pong", "t": t})


def error(exc: ChatError, sub_id: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error"}
    if sub_id is not None:
        frame["id"] = sub_id
    frame.update(exc.to_dict())
    return dumps(frame)


def result(sub_id: str, version: int, value: str) -> str:
    return f'{{"type":"result","id":{dumps(sub_id)},"version":{version},"value":{value}}}'


def mutated(request_id: str, outcome: StoredOutcome) -> str:
    head = f'{{"type":"mutated","id":{dumps(request_id)}'
    if outcome.ok:
        return f'{head},"ok":true,"value":{bytes(outcome.value).decode()},"version":{outcome.version}}}'
    return f'{head},"ok":false,"error":{dumps(outcome.error)}}}'
