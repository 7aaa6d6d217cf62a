"""The WebSocket transport under uvicorn: websockets' sans-I/O protocol, except that a message over
the transport limit is answered instead of closing the connection.

uvicorn's ``websockets-sansio`` protocol buffers a whole message before handing it to the app, up
to ``ws_max_size`` (16 MiB); past that websockets fails the connection with 1009. The contract says
every frame over 1 MiB gets ``too_large`` and the connection stays usable. Messages up to the limit
reach the session, which answers them (server.ws.session). A bigger one is skipped here as its
bytes arrive, holding at most its first PREFIX bytes (enough to read its ``type`` and ``id``), and
the session receives that prefix marked ``TOO_LARGE``. Memory per connection stays bounded by the
limit whatever a client sends.

A message compressed with permessage-deflate cannot be skipped midway (the decompressor's state
runs across messages): with WS_COMPRESSION on, an oversized message still closes with 1009.

An idle connection is most of what a web process holds, so the protocol keeps less than uvicorn's:
its message queue and writable flag wait without asyncio's deques (a few hundred bytes each, even
empty), and the handshake's request and response (their headers) are let go once it is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.utils import apply_mask  # (the C speedup when built; the same result)

PREFIX = 4096  # bytes of a skipped message kept for its envelope (type, id)
TOO_LARGE = "threadline.too_large"  # key of the ASGI receive message of a skipped message
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class _Skipped(Frame):
    """The end of a skipped message: its first bytes stand for it."""


class _SkippingFrames(Protocol):
    """Frame parsing that skips a data message past ``max_size`` (see the module docstring)."""

    _header = b""  # the two first bytes of the frame being parsed
    _want_header = False
    _skipping = False  # inside a message being skipped (until its last frame)
    _prefix = b""
    _opcode = Opcode.TEXT  # of the skipped message's first frame

    def _read_exact(self, n: int) -> Generator[None, None, bytes | bytearray]:
        data = yield from self.reader.read_exact(n)
        if self._want_header:
            self._header, self._want_header = bytes(data), False
        return data

    def parse(self) -> Generator[None]:
        try:
            while True:
                if (yield from self.reader.at_eof()):
                    raise EOFError("unexpected end of stream")
                limit = self.max_message_size
                if limit is not None and self.current_size is not None:
                    limit -= self.current_size
                self._want_header = True
                try:
                    frame = yield from Frame.parse(self._read_exact, mask=True, max_size=0 if self._skipping else limit,
                                                   extensions=self.extensions)
                except PayloadTooBig as exc:
                    if self.extensions or exc.size is None:
                        raise
                    yield from self._oversized(exc.size)
                    continue
                if self._skipping and frame.opcode in _DATA:  # an empty frame of the skipped message
                    if frame.fin:
                        self._end_skip()
                    continue
                self.recv_frame(frame)
        except ProtocolError as exc:
            self.fail(1002, str(exc))
            self.parser_exc = exc
        except EOFError as exc:
            self.fail(1006, str(exc))
            self.parser_exc = exc
        except UnicodeDecodeError as exc:
            self.fail(1007, f"{exc.reason} at position {exc.start}")
            self.parser_exc = exc
        except PayloadTooBig as exc:
            exc.set_current_size(self.current_size)
            self.fail(1009, str(exc))
            self.parser_exc = exc
        except Exception as exc:
            self.logger.error("parser failed", exc_info=True)
            self.fail(1011)
            self.parser_exc = exc
        yield
        raise AssertionError("parse() shouldn't step after error")

    def _oversized(self, length: int) -> Generator[None]:
        """The frame whose header was just read is too big: skip its payload (a control frame, which
        is never big, is read and handled as usual while a message is being skipped)."""
        head1 = self._header[0]
        fin, opcode = bool(head1 & 0x80), Opcode(head1 & 0x0F)
        mask = bytes((yield from self.reader.read_exact(4)))
        if opcode not in _DATA:
            if length > 125:
                raise ProtocolError("control frame too long")
            data = apply_mask(bytes((yield from self.reader.read_exact(length))), mask)
            self.recv_frame(Frame(opcode, data, fin))
            return
        if not self._skipping:
            self._skipping, self._opcode = True, opcode
            keep = min(length, PREFIX) if opcode is not Opcode.CONT else 0  # its start: type and id
            self._prefix = apply_mask(bytes((yield from self.reader.read_exact(keep))), mask) if keep else b""
            length -= keep
        while length:
            if not self.reader.buffer:
                if self.reader.eof:
                    raise EOFError("stream ends inside a frame")
                yield
                continue
            taken = min(length, len(self.reader.buffer))
            del self.reader.buffer[:taken]
            length -= taken
        if fin:
            self._end_skip()

    def _end_skip(self) -> None:
        # a message skipped from its first frame stands alone; one whose start was handed on ends it
        opcode = Opcode.CONT if self.current_size is not None else self._opcode
        self._skipping, prefix, self._prefix = False, self._prefix, b""
        self.recv_frame(_Skipped(opcode, prefix, True))


class SkippingServerProtocol(ServerProtocol, _SkippingFrames):
    """websockets' server protocol with the frame parsing of ``_SkippingFrames``."""


class _Waiters:
    """Tasks waiting for a condition, with no list held while none waits (asyncio's keep a deque)."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    def _wake(self) -> None:
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            if self._waiters is None:
                self._waiters = []
            waiters = self._waiters
            waiter = asyncio.get_running_loop().create_future()
            waiters.append(waiter)
            try:
                await waiter
            finally:
                waiters.remove(waiter)
                if not waiters and self._waiters is waiters:
                    self._waiters = None


class _Queue(_Waiters):
    """What uvicorn's protocol uses of an ``asyncio.Queue`` (put_nowait, get, empty), unbounded."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Any] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        await self._until(lambda: bool(self._items))
        return self._items.pop(0)


class _Flag(_Waiters):
    """What uvicorn's protocol uses of an ``asyncio.Event`` (set, clear, wait); set at first."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        super().__init__()
        self._set = True

    def set(self) -> None:
        self._set = True
        self._wake()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        await self._until(lambda: self._set)
        return True


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol on ``SkippingServerProtocol``: a skipped message
    reaches the app as its first bytes, marked ``TOO_LARGE``; lighter when idle (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        made = self.conn
        self.conn = SkippingServerProtocol(extensions=made.available_extensions, max_size=self.config.ws_max_size,
                                           logger=made.logger)
        made.parser.close()  # its parser refers back to it: without this the pair waits for a full collection
        self.queue = _Queue()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self._too_large = False

    def start_keepalive(self) -> None:
        """(Called once the handshake's response is sent.)"""
        super().start_keepalive()
        request = vars(self).pop("request", None)
        vars(self).pop("response", None)
        if request is not None:  # the handshake parser keeps the request as long as the connection:
            request.headers.clear()  # its headers, at least, go (the scope has its own copy)

    def handle_text(self, event: Frame) -> None:
        self._too_large = isinstance(event, _Skipped)
        super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        self._too_large = isinstance(event, _Skipped)
        super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        self._too_large = self._too_large or isinstance(event, _Skipped)
        super().handle_cont(event)

    def send_receive_event_to_app(self) -> None:
        if not self._too_large:
            super().send_receive_event_to_app()
            return
        self._too_large = False
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        text = data[:PREFIX].decode("utf-8", "replace")  # only its envelope is read
        event: Any = dict(type="websocket.receive", text=text)  # ASGI's receive event (not a frame of ours)
        event[TOO_LARGE] = True
        self.queue.put_nowait(event)
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

