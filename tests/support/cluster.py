"""A local Redis Cluster of bundled Valkey nodes for tests, and moving a slot between its primaries."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.support import procs
from threadline.shared.storage import cluster, embedded


class Nodes:
    """The nodes of a local cluster: their ports, and a primary killed and started again (on its own
    data: its AOF and its view of the cluster, with ``persist``)."""

    def __init__(self, tmp: Path, primaries: int, persist: bool) -> None:
        self._tmp, self._persist = tmp, persist
        for attempt in range(3):  # on other ports when one was taken between the choice and the bind
            chosen = embedded.free_ports(2 * primaries)  # nodes and their buses, all different
            self.ports, self._buses = chosen[:primaries], chosen[primaries:]
            self.procs: list[subprocess.Popen[bytes]] = []
            try:
                for i in range(primaries):
                    self.procs.append(self._start(i))
                return
            except procs.PortTaken:
                self.stop()
                if attempt == 2:
                    raise

    def _start(self, i: int) -> subprocess.Popen[bytes]:
        port = self.ports[i]
        proc = subprocess.Popen(embedded.command(port, self._tmp / str(port), persist=self._persist, cluster=True,
                                                 bus_port=self._buses[i]), stdout=subprocess.DEVNULL)
        procs.wait_for_port(port, proc)
        return proc

    def kill(self, i: int) -> None:
        """SIGKILL the node ``i`` (no shutdown: what it acknowledged is in its AOF, nothing more)."""
        self.procs[i].kill()
        self.procs[i].wait()

    def restart(self, i: int) -> None:
        """Start node ``i`` again on its data; return once the cluster serves every slot again."""
        self.procs[i] = self._start(i)
        cluster.form(self.ports)  # (formed already: this waits until every node says ok)

    def stop(self) -> None:
        for proc in self.procs:
            procs.stop(proc)


@contextlib.contextmanager
def local_nodes(tmp: Path, primaries: int = 3, *, persist: bool = False) -> Iterator[Nodes]:
    """``primaries`` cluster-enabled nodes (each with its bus on a port of its own) formed into one
    cluster."""
    nodes = Nodes(tmp, primaries, persist)
    try:
        cluster.form(nodes.ports)
        yield nodes
    finally:
        nodes.stop()


@contextlib.contextmanager
def local_cluster(tmp: Path, primaries: int = 3, form: bool = True) -> Iterator[list[int]]:
    """``primaries`` cluster-enabled nodes, formed into one cluster unless ``form`` is False; yields
    their ports."""
    nodes = Nodes(tmp, primaries, persist=False)
    try:
        if form:
            cluster.form(nodes.ports)
        yield nodes.ports
    finally:
        nodes.stop()


def owner_of(ports: list[int], slot: int) -> int:
    """The port of the primary serving ``slot`` now."""
    for port in ports:
        with redis.Redis(port=port) as node:
            for entry in node.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
                first, last, primary = entry[0], entry[1], entry[2]  # primary: [host, port, id]
                if first <= slot <= last:
                    return int(primary[1])
    raise LookupError(f"no node serves slot {slot}")


def move_slot(ports: list[int], slot: int, to: int) -> None:
    """Move an empty ``slot`` to the primary on port ``to``, as a resharding tool does (importing,
    migrating, then the new owner announced to every node)."""
    src = owner_of(ports, slot)
    nodes = {port: redis.Redis(port=port) for port in ports}
    try:
        ids = {port: nodes[port].execute_command("CLUSTER", "MYID").decode() for port in ports}  # type: ignore[no-untyped-call]
        nodes[to].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])  # type: ignore[no-untyped-call]
        nodes[src].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])  # type: ignore[no-untyped-call]
        for port in [to, src, *(p for p in ports if p not in (to, src))]:
            nodes[port].execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to])  # type: ignore[no-untyped-call]
    finally:
        for node in nodes.values():
            node.close()


def migrate_slot(ports: list[int], slot: int, to: int, batch: int = 10, pause_s: float = 0.05) -> int:
    """Move ``slot`` with its keys to the primary on port ``to`` while clients go on using it, as a
    resharding tool does: importing and migrating marked, the keys moved a few at a time (clients
    meanwhile follow ASK redirections), then the new owner announced to every node. How many keys."""
    import time

    src = owner_of(ports, slot)
    nodes = {port: redis.Redis(port=port) for port in ports}
    moved = 0
    try:
        ids = {port: nodes[port].execute_command("CLUSTER", "MYID").decode() for port in ports}  # type: ignore[no-untyped-call]
        nodes[to].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])  # type: ignore[no-untyped-call]
        nodes[src].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])  # type: ignore[no-untyped-call]
        while keys := nodes[src].execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):  # type: ignore[no-untyped-call]
            nodes[src].execute_command("MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", *keys)  # type: ignore[no-untyped-call]
            moved += len(keys)
            time.sleep(pause_s)  # the clients work on the slot half moved
        for port in [to, src, *(p for p in ports if p not in (to, src))]:
            nodes[port].execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to])  # type: ignore[no-untyped-call]
    finally:
        for node in nodes.values():
            node.close()
    return moved
