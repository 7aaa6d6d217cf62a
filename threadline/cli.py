"""The ``threadline`` command: every process of the product, and its one-off jobs.

    threadline dev              everything in the foreground, supervised (what scripts/run starts)
    threadline web [--workers N]
    threadline worker           the generation workers (WORKERS processes)
    threadline index            the index process (embeddings, vector search)
    threadline cron             the scheduler of maintenance jobs
    threadline token USER [--days D] [--admin]
    threadline reembed          queue every message and snippet for embedding again
    threadline vacuum           drop the files no message references
    threadline migrate          move data of an earlier key layout to this version's (processes stopped)
    threadline erase USER       erase every record of a user (or finish an erasure left unfinished)
    threadline export USER FILE every record of a user as a tar archive (FILE - : standard output)

Settings come from the environment; a ``.env`` file in the working directory adds the variables
it names that the environment does not already set (the real environment wins).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from dotenv import load_dotenv

HELP = "usage: threadline COMMAND [ARGS]\n\n" + (__doc__ or "").split("\n\n")[1]


def _dev(args: list[str]) -> int:
    from threadline.server.launch import main

    return main()


def _server(command: str) -> Callable[[list[str]], int]:
    def run(args: list[str]) -> int:
        from threadline.server.__main__ import main

        return main([command, *args])

    return run


def _workers(queue: str) -> Callable[[list[str]], int]:
    def run(args: list[str]) -> int:
        if args:
            print(f"threadline {queue}: takes no arguments", file=sys.stderr)
            return 2
        from threadline.workers.__main__ import main

        return main([queue])

    return run


def _migrate(args: list[str]) -> int:
    if args:
        print("threadline migrate: takes no arguments", file=sys.stderr)
        return 2
    from threadline.shared.errors import ConfigError
    from threadline.shared.runtime import process_settings
    from threadline.shared.storage import layout
    from threadline.shared.storage.client import connect_sync
    from threadline.workers.queues import wait_for_redis

    url = process_settings().redis_url
    wait_for_redis(url).close()
    try:
        with connect_sync(url) as client:  # (a cluster client on a cluster)
            moved = layout.migrate(client)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"migrate: {moved} key(s) moved; the data is in key layout {layout.VERSION}")
    return 0


def _erase(args: list[str]) -> int:
    if len(args) != 1:
        print("usage: threadline erase USER", file=sys.stderr)
        return 2
    import asyncio

    from threadline import Threadline

    async def erase() -> int:
        async with Threadline.from_env() as tl:
            view = await tl.erase_user(args[0], by="threadline erase")
        print(f"erase {args[0]}: {view.status}, erased {view.erased}")
        return 0 if view.status == "done" else 1

    return asyncio.run(erase())


def _export(args: list[str]) -> int:
    if len(args) != 2:
        print("usage: threadline export USER FILE", file=sys.stderr)
        return 2
    import asyncio

    from threadline import Threadline

    async def export() -> int:
        out = sys.stdout.buffer if args[1] == "-" else open(args[1], "wb")
        try:
            async with Threadline.from_env() as tl:
                async for piece in tl.export_user(args[0]):
                    out.write(piece)
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        return 0

    return asyncio.run(export())


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "dev": _dev,
    "web": _server("web"),
    "token": _server("token"),
    "worker": _workers("generation"),
    "index": _workers("index"),
    "cron": _workers("cron"),
    "reembed": _workers("reembed"),
    "vacuum": _workers("vacuum"),
    "migrate": _migrate,
    "erase": _erase,
    "export": _export,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(HELP)
        return 0
    if not args or args[0] not in COMMANDS:
        print(HELP, file=sys.stderr)
        return 2
    load_dotenv(Path.cwd() / ".env", override=False)
    if str(Path.cwd()) not in sys.path:  # the app's own module (APP_MODULE) lives here, as with python -m
        sys.path.insert(0, str(Path.cwd()))
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
