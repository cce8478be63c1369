"""The roles on a 2-shard ClickHouse cluster (two chdb-core servers, Distributed tables over local
ones, `--clickhouse-cluster`): points land on the shard of their run, reads answer as on one
server, and a shard killed under load makes reads answer 503 (never a partial answer) while the
projector waits for it and then catches up: every point once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import httpx
import numpy as np
import pytest

import runstream
from tests.integration.conftest import Stack
from tests.integration.test_crash_recovery import stream
from tests.services.clickhouse_cluster import ClickHouseCluster, run_ids_per_shard
from tests.services.kafka_broker import KafkaBroker
from tests.services.ports import free_port

POINTS = 500_000  # per run; one run per shard


@pytest.fixture
def cluster_stack(tmp_path: Path, kafka: KafkaBroker, clickhouse_cluster: ClickHouseCluster) -> Iterator[Stack]:
    s = Stack(tmp_path, kafka, clickhouse_cluster.nodes[0])
    s.env["RUNSTREAM_CLICKHOUSE_CLUSTER"] = clickhouse_cluster.name
    yield s
    s.close()


def test_cluster_pipeline_and_a_shard_killed_under_load(
    cluster_stack: Stack, clickhouse_cluster: ClickHouseCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = cluster_stack
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
    stack.start("projector")
    _, api = stack.http_role("api")
    gateway_port = free_port()
    stack.start("gateway", "--port", str(gateway_port), "--clickhouse-url", stack.clickhouse_url)
    gateway = f"http://127.0.0.1:{gateway_port}"
    database = stack.clickhouse_url.rsplit("/", 1)[1]
    nodes = clickhouse_cluster.nodes
    local = [clickhouse_connect.get_client(dsn=node.url, database=f"{database}_local") for node in nodes]
    ch = clickhouse_connect.get_client(dsn=clickhouse_cluster.url, database=database)
    runs = [
        runstream.start_run(experiment="cluster", run_id=run_id, tracking_uri=stack.kafka_uri)
        for run_id in run_ids_per_shard(ch, len(local))
    ]
    writers = [threading.Thread(target=stream, args=(run, POINTS, 0.3)) for run in runs]
    for writer in writers:
        writer.start()

    # Under load, shard 2 dies: a read needing it is a 503 naming it, never an answer without it.
    deadline = time.monotonic() + 120
    while int(local[1].query("SELECT count() FROM metrics").result_rows[0][0]) < POINTS // 5:
        assert time.monotonic() < deadline, "points did not reach shard 2"
        time.sleep(0.05)
    down = clickhouse_cluster.nodes[1]
    down.kill9()
    refused = httpx.get(f"{api}/api/v1/runs/{runs[0].run_id}/metric-history", params={"key": "x"}, timeout=60)
    assert refused.status_code == 503, refused.text
    assert f"127.0.0.1:{down.tcp_port}" in refused.json()["message"]
    time.sleep(2)  # the writers go on meanwhile; the projector's inserts fail and are retried
    down.start()
    for writer in writers:
        writer.join()
    tokens = [run.end() for run in runs]

    # Every point once, each run's on its own shard, the answers those of one server.
    client = runstream.Client(api)
    for run, token in zip(runs, tokens, strict=True):
        history = client.get_metric_history(run.run_id, "x", after=token)
        assert np.array_equal(history.values, np.arange(POINTS, dtype=np.float64))
    counts = "SELECT run_id, count() FROM metrics GROUP BY run_id"
    per_shard = [{row[0]: row[1] for row in node.query(counts).result_rows} for node in local]
    assert per_shard == [{runs[0].run_id: POINTS}, {runs[1].run_id: POINTS}]
    summary = ch.query("SELECT run_id, points, latest.3 FROM metric_summary FINAL").result_rows
    assert {tuple(row) for row in summary} == {(run.run_id, POINTS, POINTS - 1.0) for run in runs}
    # MLflow's API on the gateway reads the same through the cluster.
    got = httpx.get(f"{gateway}/api/2.0/mlflow/runs/get", params={"run_id": runs[1].run_id}, timeout=30).json()
    assert got["run"]["info"]["status"] == "FINISHED"
    assert {m["key"]: m["value"] for m in got["run"]["data"]["metrics"]} == {"x": POINTS - 1.0}
