"""Several ClickHouse servers (chdb-core's engine) on 127.0.0.1 as one cluster of one-replica shards.

Each node is a ClickHouseServer (own process, data dir and ports) whose config.xml names every node
in `<remote_servers>`, sets its own `<macros>` and the schedule pool that Distributed tables need
(chdb's default of 0 leaves asynchronous Distributed inserts queued forever). Nodes stop, die and
restart on their own, by PID, on the same ports and data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from tests.services.clickhouse_server import READY_TIMEOUT_S, ClickHouseServer
from tests.services.ports import LOOPBACK, free_ports

CLUSTER_NAME = "runstream_test"


def _node_config(cluster: str, tcp_ports: list[int], shard: int) -> str:
    shards = "".join(
        f"      <shard><replica><host>{LOOPBACK}</host><port>{port}</port></replica></shard>\n" for port in tcp_ports
    )
    return (
        "  <background_distributed_schedule_pool_size>4</background_distributed_schedule_pool_size>\n"
        f"  <remote_servers>\n    <{cluster}>\n{shards}    </{cluster}>\n  </remote_servers>\n"
        f"  <macros><shard>{shard}</shard><replica>node{shard}</replica></macros>\n"
    )


@dataclass
class ClickHouseCluster:
    name: str
    nodes: list[ClickHouseServer]  # nodes[i] is shard i + 1

    @property
    def url(self) -> str:
        """Any node takes the cluster's queries; the first one does here."""
        return self.nodes[0].url

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()


def start_clickhouse_cluster(
    workdir: Path, shards: int = 2, name: str = CLUSTER_NAME, timeout: float = READY_TIMEOUT_S
) -> ClickHouseCluster:
    """Start `shards` servers on free ports, each data dir under `workdir`/nodeN, and return once
    every one answers."""
    ports = free_ports(2 * shards)
    http_ports, tcp_ports = ports[:shards], ports[shards:]
    nodes = []
    try:
        for shard, (http_port, tcp_port) in enumerate(zip(http_ports, tcp_ports, strict=True), start=1):
            workdir_n = workdir / f"node{shard}"
            workdir_n.mkdir(parents=True, exist_ok=True)
            node = ClickHouseServer(workdir_n, http_port, tcp_port, extra_config=_node_config(name, tcp_ports, shard))
            node.start(timeout=timeout)
            nodes.append(node)
    except BaseException:
        for node in nodes:
            node.kill()
        raise
    return ClickHouseCluster(name, nodes)


def run_ids_per_shard(client: Client, shards: int) -> list[str]:
    """Run ids whose rows the Distributed tables put on shard 1, 2, ... (cityHash64(run_id) % shards,
    the shards of equal weight)."""
    found: dict[int, str] = {}
    while len(found) < shards:
        run_id = uuid.uuid4().hex
        hashed = client.query("SELECT cityHash64({r:String}) % {n:UInt32}", parameters={"r": run_id, "n": shards})
        found.setdefault(int(hashed.result_rows[0][0]), run_id)
    return [found[slot] for slot in range(shards)]
