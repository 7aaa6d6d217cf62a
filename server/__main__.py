"""Commands: ``python -m threadline.server web`` runs the web process, ``python -m threadline.server token USER`` mints a token."""

from __future__ import annotations

import argparse
import sys

from threadline.shared.auth import mint, resolve_secret
from threadline.shared.config import load_settings
from threadline.shared.errors import ConfigError, Unauthorized
from threadline.shared.storage import layout
from threadline.shared.storage.cluster import check_rq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m threadline.server")
    sub = parser.add_subparsers(dest="command", required=True)
    web = sub.add_parser("web", help="run the web server (uvicorn) in the foreground")
    web.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    tok = sub.add_parser("token", help="print a token for a user")
    tok.add_argument("user_id")
    tok.add_argument("--days", type=float, default=30, help="validity in days (0: never expires)")
    tok.add_argument("--admin", action="store_true", help="include the admin claim (playground)")
    form = sub.add_parser("cluster", help="form local cluster-enabled nodes into one Redis Cluster (scripts/run)")
    form.add_argument("ports", type=int, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "cluster":
        from threadline.shared.storage import cluster
        from threadline.shared.storage.embedded import wait_for_ports

        wait_for_ports(args.ports)
        cluster.form(args.ports)
        print(f"a cluster of {len(args.ports)} primaries on ports {', '.join(map(str, args.ports))}")
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "token":
        try:
            secret, _ = resolve_secret(settings, create=False)
            token = mint(secret, args.user_id, ttl_s=int(args.days * 86400) or None, admin=args.admin)
        except (ConfigError, Unauthorized) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(token)
        return 0
    try:
        check_rq(settings.redis_url, settings.rq_url)  # a Redis that does not answer yet is let be: the web may start first
        layout.check_url(settings.redis_url, unreachable_ok=True)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from threadline.server.ws.transport import WebSocketProtocol
    from threadline.shared import logs

    logs.setup("web", settings.log_level, settings.log_json)
    uvicorn.run(
        "threadline.server.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        ws=WebSocketProtocol,  # websockets' sans-I/O protocol that answers messages over the limit
        ws_max_size=16 << 20,  # frames over 1 MiB get too_large from the session; bigger ones are skipped
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        ws_per_message_deflate=settings.ws_compression,
        log_level=settings.log_level,
        log_config=None,  # our handler (shared.logs) formats uvicorn's records too
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
