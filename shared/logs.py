"""Logging of every process: one line per record, with the request or job it belongs to.

``request_id`` is set for each WebSocket frame and HTTP request a web process
handles, ``job_id`` for each job a worker runs; every record made meanwhile
carries them (contextvars follow asyncio tasks). LOG_JSON=true writes JSON
lines instead (ts, level, logger, process, requestId, jobId, msg, exc).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
job_id: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="")

_LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING,
           "info": logging.INFO, "debug": logging.DEBUG, "trace": logging.DEBUG}


class _Context(logging.Filter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        req, job = request_id.get(), job_id.get()
        ids = " ".join(f"{k}={v}" for k, v in (("req", req), ("job", job)) if v)
        # the formatters' extra fields (LogRecord takes any attribute)
        record.__dict__.update(request_id=req, job_id=job, process_kind=self.process,
                               ids=f" [{ids}]" if ids else "")
        return True


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
               "process": getattr(record, "process_kind", ""), "pid": record.process,
               "msg": record.getMessage()}
        for key, attr in (("requestId", "request_id"), ("jobId", "job_id")):
            if getattr(record, attr, ""):
                out[key] = getattr(record, attr)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(process: str, level: str = "info", as_json: bool = False) -> None:
    """Configure the root logger of this process (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_threadline", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._threadline = True  # type: ignore[attr-defined]
    handler.addFilter(_Context(process))
    if as_json:
        handler.setFormatter(_Json())
    else:
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s", "%H:%M:%S")
        fmt.converter = time.gmtime
        handler.setFormatter(fmt)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
