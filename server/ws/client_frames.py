"""The frames a client sends: one tagged union, decoded once (what the server sends: server.frames)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from threadline.server.args import Id
from threadline.shared.errors import TooLarge
from threadline.shared.json_depth import check_depth, top_level_strings

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
    patches: bool = False  # after the first result, send what changed (a `patch` frame)


class Unsubscribe(_Frame, tag="unsubscribe"):
    id: Id


class Mutate(_Frame, tag="mutate"):
    id: Id
    name: str
    args: msgspec.Raw = msgspec.Raw(b"{}")


ClientFrame = Connect | Ping | Subscribe | Unsubscribe | Mutate
_decode_frame = msgspec.json.Decoder(ClientFrame).decode


def decode_frame(text: str) -> ClientFrame:
    """The frame in ``text``: TooLarge over MAX_FRAME bytes, BadRequest nested too deep, or msgspec's
    DecodeError/ValidationError; checked in that order, so no decoder ever recurses into a hostile frame."""
    if len(text) > MAX_FRAME // 4 and len(text.encode("utf-8", "replace")) > MAX_FRAME:
        raise TooLarge(f"frame over {MAX_FRAME} bytes")
    check_depth(text)
    return _decode_frame(text)


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    """Enough of a frame that failed to decode to answer it by id."""

    type: Any = None
    id: Any = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


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
