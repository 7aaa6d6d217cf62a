"""A local cluster of bundled Valkey nodes: formed without valkey-cli, every slot served, keys of
different slots spread over every primary, and forming again changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncCluster
from redis.cluster import RedisCluster

from tests.support import procs
from tests.support.cluster import local_cluster
from tests.support.store import CLUSTER
from threadline.shared.storage import cluster, embedded
from threadline.shared.storage.client import connect, connect_sync, is_cluster, node_pool
from threadline.shared.storage.scripts import Script, Scripts


def test_the_slots_are_split_evenly_and_whole() -> None:
    ranges = cluster.slot_ranges(3)
    assert ranges == [(0, 5460), (5461, 10922), (10923, 16383)]
    assert sum(last - first + 1 for first, last in ranges) == cluster.SLOTS
    assert cluster.slot_ranges(1) == [(0, 16383)]
    with pytest.raises(ValueError):
        cluster.slot_ranges(0)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[int]]:
    with local_cluster(tmp_path, form=False) as ports:
        yield ports


def test_three_nodes_become_one_cluster_that_spreads_keys_over_every_primary(nodes: list[int]) -> None:
    cluster.form(nodes)
    client = RedisCluster(host="127.0.0.1", port=nodes[1])
    try:
        owners = set()
        for i in range(30):
            client.set(f"k{i}", i)
            owners.add(client.get_node_from_key(f"k{i}").port)
        assert owners == set(nodes)  # every primary holds some of them
        assert [int(client.get(f"k{i}")) for i in range(30)] == list(range(30))
    finally:
        client.close()
    cluster.form(nodes)  # again: nothing changes, nothing fails
    for port in nodes:
        with redis.Redis(port=port) as node:
            fields = cluster.info(node)
        assert fields["cluster_state"] == "ok" and int(fields["cluster_known_nodes"]) == 3


def test_a_single_node_is_no_cluster(tmp_path: Path) -> None:
    proc, port = procs.start_valkey(tmp_path / "single")
    try:
        assert cluster.cluster_enabled(f"redis://127.0.0.1:{port}/0") is False
    finally:
        procs.stop(proc)
    assert cluster.cluster_enabled(f"redis://127.0.0.1:{embedded.free_port()}/0") is None  # nobody there


def test_scripts_run_together_on_a_cluster_and_on_a_primary_that_lost_them(nodes: list[int]) -> None:
    """A pipeline of scripts over keys of every primary (FCALL; a cluster pipeline refuses EVALSHA),
    and a primary that forgot the functions gets them again."""
    cluster.form(nodes)
    counter = Script("test_counter", "return redis.call('INCRBY', KEYS[1], ARGV[1])")

    async def run() -> None:
        client = AsyncCluster(host="127.0.0.1", port=nodes[0])
        try:
            await client.initialize()
            scripts = Scripts(client)
            calls = [(counter, [f"k{i}"], [i]) for i in range(12)]
            assert {client.get_node_from_key(f"k{i}").port for i in range(12)} == set(nodes)
            assert await scripts.run_all(calls) == list(range(12))
            with redis.Redis(port=nodes[1]) as node:
                node.function_flush()
            assert await scripts.run_all(calls) == [2 * i for i in range(12)]
        finally:
            await client.aclose()

    asyncio.run(run())


def test_the_suite_runs_on_the_store_it_was_asked_for(redis_url: str) -> None:
    """THREADLINE_TEST_CLUSTER=3: every test on a local cluster of three primaries (tests/support/store.py)."""
    assert is_cluster(redis_url) == bool(CLUSTER)
    if CLUSTER:
        with connect_sync(redis_url) as client:
            assert isinstance(client, RedisCluster) and len(client.get_primaries()) == CLUSTER


def test_a_new_clients_first_commands_sent_at_once_all_run(nodes: list[int]) -> None:
    """A worker's first jobs start together: their first commands race the client's first
    initialization (redis-py 8.1 sent some on a connection it closed meanwhile: 13 runs in 20 failed)."""
    cluster.form(nodes)

    async def burst() -> list[object]:
        client = connect(f"redis://127.0.0.1:{nodes[0]}/0")
        try:
            return await asyncio.gather(*(client.set(f"k{{{i}}}", i) for i in range(64)), return_exceptions=True)
        finally:
            await client.aclose()

    for _ in range(10):
        failed = [r for r in asyncio.run(burst()) if r is not True]
        assert failed == []


def test_a_pipeline_of_functions_is_routed_without_asking_the_server_for_their_keys(nodes: list[int]) -> None:
    """redis-py asked a primary for an FCALL's keys (COMMAND GETKEYS) before sending it: a round trip
    per call of the delta batcher's pipeline (5,500 calls/s on three primaries, 50,000 without)."""
    cluster.form(nodes)
    counter = Script("test_counter", "#!lua\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")

    def getkeys() -> int:
        total = 0
        for port in nodes:
            with redis.Redis(port=port) as node:
                total += int(node.info("commandstats").get("cmdstat_command|getkeys", {}).get("calls", 0))
        return total

    async def run() -> list[object]:
        client = connect(f"redis://127.0.0.1:{nodes[0]}/0")
        try:
            return await Scripts(client).run_all([(counter, [f"k{i}"], [i]) for i in range(30)])
        finally:
            await client.aclose()

    before = getkeys()
    assert asyncio.run(run()) == list(range(30))
    assert getkeys() == before


def test_a_pool_of_one_node_signs_in_as_the_cluster_client_does() -> None:
    """The change listener's and wait_workflow's own connections to a primary: the same password and,
    with TLS, the same TLS (a plain connection to a TLS node before)."""
    from redis.asyncio.cluster import ClusterNode
    from redis.asyncio.connection import SSLConnection

    tls = AsyncCluster(host="127.0.0.1", port=1, ssl=True, ssl_cert_reqs="none", password="pw")
    conn = node_pool(tls, ClusterNode("127.0.0.1", 7000), max_connections=1).make_connection()
    assert isinstance(conn, SSLConnection) and conn.password == "pw" and (conn.host, conn.port) == ("127.0.0.1", 7000)
    plain = AsyncCluster(host="127.0.0.1", port=1, username="app", password="pw")
    conn = node_pool(plain, ClusterNode("127.0.0.1", 7001)).make_connection()
    assert not isinstance(conn, SSLConnection) and (conn.username, conn.password) == ("app", "pw")
