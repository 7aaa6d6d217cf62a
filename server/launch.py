"""Run every process of the product in the foreground (``scripts/run``), supervised.

Without REDIS_URL, the embedded Valkey server runs too, persisting under DATA_DIR,
and its URL is recorded in DATA_DIR/stack.json while it runs, so that the Python
API and ``python -m threadline.workers reembed`` on the same DATA_DIR find it.
Without AUTH_SECRET, a secret is kept under DATA_DIR (dev mode: every process
reads it there, and the chat page signs in by itself) and a dev token is printed.
A process that dies is restarted with backoff (see server.supervisor).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import msgspec

from threadline.server.supervisor import Supervisor
from threadline.shared.auth import mint, resolve_secret
from threadline.shared.config import load_settings, stack_file
from threadline.shared.errors import ConfigError
from threadline.shared.storage import embedded

DEV_USER = "dev"


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data_dir = Path(settings.data_dir)
    secret, dev_mode = resolve_secret(settings)
    # In dev mode the children read the secret from DATA_DIR themselves: passing it as
    # AUTH_SECRET would take them out of dev mode.
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    supervisor = Supervisor()
    if not os.environ.get("REDIS_URL"):
        port = embedded.free_port()
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        supervisor.add("redis", embedded.command(port, data_dir / "valkey", persist=True), env)
    py = sys.executable
    supervisor.add("web", [py, "-m", "threadline.server", "web"], env)
    supervisor.add("worker", [py, "-m", "threadline.workers", "generation"], env)
    supervisor.add("index", [py, "-m", "threadline.workers", "index"], env)
    supervisor.add("cron", [py, "-m", "threadline.workers", "cron"], env)
    print(f"threadline: http://{settings.host}:{settings.port}/  (Redis {env['REDIS_URL']})", flush=True)
    if dev_mode:
        token = mint(secret, DEV_USER)
        print(f"dev token for user {DEV_USER!r} (valid 30 days):\n  {token}", flush=True)
        print(f"  curl -H 'Authorization: Bearer {token}' "
              f"http://{settings.host}:{settings.port}/api/threads", flush=True)
    record = stack_file(settings.data_dir)
    if embedded:
        data_dir.mkdir(parents=True, exist_ok=True)
        record.write_bytes(msgspec.json.encode({"redisUrl": env["REDIS_URL"], "pid": os.getpid()}))
    try:
        return supervisor.run()
    finally:
        if embedded:
            with contextlib.suppress(OSError):
                record.unlink()


if __name__ == "__main__":
    sys.exit(main())
