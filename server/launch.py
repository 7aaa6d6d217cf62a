"""Run every process of the product in the foreground (``scripts/run``), supervised.

Without REDIS_URL, the embedded Valkey server runs too, persisting under DATA_DIR.
Without AUTH_SECRET, a secret is kept under DATA_DIR and a dev token is printed.
A process that dies is restarted with backoff (see server.supervisor).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from server.supervisor import Supervisor
from shared import embedded_redis
from shared.auth import mint, resolve_secret
from shared.config import load_settings

DEV_USER = "dev"


def main() -> int:
    settings = load_settings()
    data_dir = Path(settings.data_dir)
    secret, dev_mode = resolve_secret(settings)
    env = dict(os.environ, AUTH_SECRET=secret, PYTHONUNBUFFERED="1")
    if dev_mode:
        env["DEV_MODE"] = "1"
    supervisor = Supervisor()
    if not os.environ.get("REDIS_URL"):
        port = embedded_redis.free_port()
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        supervisor.add("redis", embedded_redis.command(port, data_dir / "valkey", persist=True), env)
    py = sys.executable
    supervisor.add("web", [py, "-m", "server", "web"], env)
    supervisor.add("worker", [py, "-m", "workers", "generation"], env)
    supervisor.add("index", [py, "-m", "workers", "index"], env)
    print(f"threadline: http://{settings.host}:{settings.port}/  (Redis {env['REDIS_URL']})", flush=True)
    if dev_mode:
        token = mint(secret, DEV_USER)
        print(f"dev token for user {DEV_USER!r} (valid 30 days):\n  {token}", flush=True)
        print(f"  curl -H 'Authorization: Bearer {token}' "
              f"http://{settings.host}:{settings.port}/api/threads", flush=True)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
