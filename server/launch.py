"""Run every process of the product in the foreground (``scripts/run``), supervised.

Without REDIS_URL, the embedded Valkey server runs too, persisting under DATA_DIR,
and its URL is recorded in DATA_DIR/stack.json while it runs, so that the Python
API and ``python -m threadline.workers reembed`` on the same DATA_DIR find it. With
REDIS_CLUSTER_NODES=n, a local Redis Cluster of n embedded Valkey primaries runs instead
(on the same ports every time: their view of the cluster persists with their data), plus
a single Valkey for RQ (RQ_REDIS_URL); the other processes start once it is formed.
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
    py = sys.executable
    after = None
    if not os.environ.get("REDIS_URL"):
        if settings.redis_cluster_nodes:
            after = _local_cluster(supervisor, env, data_dir, settings.redis_cluster_nodes)
        else:
            port = embedded.free_port()
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            supervisor.add("redis", embedded.command(port, data_dir / "valkey", persist=True), env)
    supervisor.add("web", [py, "-m", "threadline.server", "web"], env, after=after)
    supervisor.add("worker", [py, "-m", "threadline.workers", "generation"], env, after=after)
    supervisor.add("index", [py, "-m", "threadline.workers", "index"], env, after=after)
    supervisor.add("cron", [py, "-m", "threadline.workers", "cron"], env, after=after)
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


def _local_cluster(supervisor: Supervisor, env: dict[str, str], data_dir: Path, size: int) -> str:
    """Supervise ``size`` cluster-enabled Valkey primaries, a single Valkey for RQ and the step that
    forms the cluster; point REDIS_URL and RQ_REDIS_URL at them. Returns the step's name."""
    home = data_dir / "valkey-cluster"
    home.mkdir(parents=True, exist_ok=True)
    saved = home / "ports.json"
    ports: list[int] = msgspec.json.decode(saved.read_bytes()) if saved.exists() else []
    if len(ports) != 2 * size + 1:
        ports = embedded.free_ports(2 * size + 1)  # nodes, their cluster buses, RQ's Valkey
        saved.write_bytes(msgspec.json.encode(ports))
    nodes, buses, rq = ports[:size], ports[size:2 * size], ports[-1]
    env["REDIS_URL"] = f"redis://127.0.0.1:{nodes[0]}/0"
    env["RQ_REDIS_URL"] = f"redis://127.0.0.1:{rq}/0"
    for i, (port, bus) in enumerate(zip(nodes, buses, strict=True), 1):
        supervisor.add(f"redis-{i}", embedded.command(port, home / str(i), persist=True, cluster=True, bus_port=bus),
                       env)
    supervisor.add("redis-rq", embedded.command(rq, data_dir / "valkey-rq", persist=True), env)
    supervisor.add("cluster", [sys.executable, "-m", "threadline.server", "cluster", *map(str, nodes)], env,
                   once=True)
    return "cluster"


if __name__ == "__main__":
    sys.exit(main())
