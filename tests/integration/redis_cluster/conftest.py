"""A real 3-node Redis Cluster on loopback, started by the tests from the redis-server binary
Mosaic already uses (core.embedded_redis), and a switch that points Mosaic at it.

The cluster is built by hand (CLUSTER ADDSLOTS on each node, CLUSTER MEET), so neither
redis-cli nor a replica is needed; the session removes its processes and files afterwards.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from core.embedded_redis import redis_server_binary, server_args, wait_until_up

NODES = 3
SLOTS = 16384


def _cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000, fixed by Redis) is free too."""
    while True:
        port = random.randrange(20000, 55000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


@dataclass
class ClusterNodes:
    """The running nodes: their ports, data directories and processes (restartable)."""

    binary: str
    root: Path
    ports: list[int]
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node's URL, as REDIS_URL names a cluster."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def client(self, index: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.ports[index])

    def start(self, index: int) -> None:
        data_dir = self.root / f"node{index}"
        args = server_args(self.binary, port=self.ports[index], data_dir=data_dir)
        args += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(data_dir / "nodes.conf"),
            "--cluster-node-timeout",
            "2000",
        ]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        if index < len(self.processes):
            self.processes[index] = process
        else:
            self.processes.append(process)
        wait_until_up(self.client(index))

    def stop(self, index: int) -> None:
        process = self.processes[index]
        process.terminate()
        process.wait(timeout=10)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says cluster_state:ok and knows all nodes and all slots."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                infos = [self.client(i).cluster("INFO") for i in range(NODES)]
                if all(
                    info["cluster_state"] == "ok"
                    and int(info["cluster_known_nodes"]) == NODES
                    and int(info["cluster_slots_ok"]) == SLOTS
                    for info in infos
                ):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def flush(self) -> None:
        for i in range(NODES):
            self.client(i).flushall()


def _cluster_create(nodes: ClusterNodes) -> None:
    # Slots in three ranges, one per node, then every node meets the first.
    bounds = [SLOTS * i // NODES for i in range(NODES + 1)]
    for i in range(NODES):
        nodes.client(i).execute_command("CLUSTER ADDSLOTS", *range(bounds[i], bounds[i + 1]))
    for i in range(1, NODES):
        nodes.client(i).execute_command("CLUSTER MEET", "127.0.0.1", nodes.ports[0])
    nodes.wait_ok()


@pytest.fixture(scope="session")
def redis_cluster_nodes() -> Iterator[ClusterNodes]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary (install the 'embedded' extra): no cluster to test")
    root = Path(tempfile.mkdtemp(prefix="mosaic-test-cluster-"))
    nodes = ClusterNodes(binary, root, [_cluster_port() for _ in range(NODES)])
    try:
        for i in range(NODES):
            nodes.start(i)
        _cluster_create(nodes)
        yield nodes
    finally:
        for process in nodes.processes:
            if process.poll() is None:
                process.terminate()
        for process in nodes.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def on_cluster(redis_cluster_nodes, settings) -> Iterator[ClusterNodes]:
    """Mosaic pointed at the test cluster (MOSAIC_REDIS_CLUSTER=true), emptied first."""
    from personalization import profile_cache
    from personalization.snapshot import holder

    redis_cluster_nodes.wait_ok()
    redis_cluster_nodes.flush()
    settings.REDIS_URL = redis_cluster_nodes.url
    settings.MOSAIC_REDIS_CLUSTER = True  # both trigger setting_changed: the cache is rebuilt
    profile_cache.reset()
    holder.reset()
    yield redis_cluster_nodes
    profile_cache.reset()
    holder.reset()


@pytest.fixture(params=["single", "cluster"])
def redis_kind(request) -> str:
    """Runs a test against the single test server and against the 3-node cluster."""
    if request.param == "cluster":
        request.getfixturevalue("on_cluster")
    return request.param
