"""Every error a client can see.

    ChatError                  code          HTTP
    ├── BadRequest             bad_request   400
    ├── Unauthorized           unauthorized  401
    ├── Forbidden              forbidden     403
    ├── NotFound               not_found     404
    ├── Conflict               conflict      409
    ├── TooLarge               too_large     413
    ├── RateLimited            rate_limited  429
    ├── Unavailable            unavailable   503
    └── Internal               internal      500

ConfigError is separate: it stops start-up and never reaches a client.
Errors of redis and httpx are converted at the storage boundary.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ChatError(Exception):
    """Root of every error that maps to one protocol error code."""

    code = "internal"
    status = 500

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_ms = retry_after_ms

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.retry_after_ms is not None:
            out["retryAfterMs"] = self.retry_after_ms
        return out


class BadRequest(ChatError):
    code = "bad_request"
    status = 400


class Unauthorized(ChatError):
    code = "unauthorized"
    status = 401


class Forbidden(ChatError):
    code = "forbidden"
    status = 403


class NotFound(ChatError):
    code = "not_found"
    status = 404


class Conflict(ChatError):
    code = "conflict"
    status = 409


class TooLarge(ChatError):
    code = "too_large"
    status = 413


class Unsupported(ChatError):
    code = "unsupported_media_type"
    status = 415


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429


class Unavailable(ChatError):
    code = "unavailable"
    status = 503


class Internal(ChatError):
    code = "internal"
    status = 500


class ConfigError(Exception):
    """An environment variable is missing or invalid; the message names it."""


def from_validation(exc: msgspec.ValidationError | msgspec.DecodeError | RecursionError) -> BadRequest:
    """A msgspec error as a BadRequest whose message names the field at fault."""
    if isinstance(exc, RecursionError):
        return BadRequest("JSON nested too deeply")
    return BadRequest(str(exc).replace("`$.", "`").replace("`$`", "the body"))


def _class_of(code: object) -> type[ChatError]:
    return next((cls for cls in ChatError.__subclasses__() if cls.code == code), ChatError)


def status_of(code: str) -> int:
    """The HTTP status of a protocol error code (500 for an unknown one)."""
    return _class_of(code).status


def error_from(error: dict[str, Any]) -> ChatError:
    """The ChatError a stored ``{"code", "message", "retryAfterMs"?}`` stands for (a replayed outcome)."""
    retry = error.get("retryAfterMs")
    return _class_of(error.get("code"))(str(error.get("message", "")),
                                        retry_after_ms=retry if isinstance(retry, int) else None)
