"""Exactly once on the 2-shard cluster, where one Distributed insert writes each shard separately:
a batch that reached one shard only (the projector killed mid-insert, or a shard down) is completed
on the other and not doubled on the first; a retried insert with the batch's token adds nothing."""

import clickhouse_connect
import numpy as np
import pytest

from runstream.eventlog.local import LocalLog
from runstream.projector.batch import Batch
from runstream.projector.projector import consume
from runstream.projector.writer import BatchWriter
from tests.conftest import new_store
from tests.services.clickhouse_cluster import run_ids_per_shard
from tests.store.test_projection import GROUP, metrics, project

POINTS = 300
METRIC_TABLES = ("metrics", "metric_rollup", "metric_summary")


@pytest.fixture
def store(request):
    return new_store(request, "cluster")


@pytest.fixture
def log(tmp_path):
    log = LocalLog(tmp_path / "events.sqlite3")
    yield log
    log.close()


def per_shard(store, clickhouse_cluster, sql):
    local = store.local_database
    return [
        clickhouse_connect.get_client(dsn=node.url, database=local).query(sql).result_rows
        for node in clickhouse_cluster.nodes
    ]


def points_of(runs, steps):
    return [
        metrics(run, 0, ["m"], [0] * steps, np.arange(steps, dtype=float), np.arange(steps), np.ones(steps))
        for run in runs
    ]


def test_a_batch_written_to_one_shard_only_is_completed_once(log, store, clickhouse_cluster):
    runs = run_ids_per_shard(store.client, 2)
    # Shard 2's run first: its offset is below all shard 1 holds, so only a per-shard position keeps it.
    log.append(points_of(runs[::-1], POINTS))
    project(log, store)
    # As if the insert had reached shard 1 only: shard 2 lost this batch's rows in every metric table.
    second = clickhouse_connect.get_client(dsn=clickhouse_cluster.nodes[1].url, database=store.local_database)
    for table in METRIC_TABLES:
        second.command(f"TRUNCATE TABLE {table}")
    consumer = log.consumer(GROUP)
    consumer.commit({0: 1})  # the commit never happened: the batch is read again
    consumer.close()
    assert project(log, store).points_written == POINTS  # shard 2's run again, shard 1's not
    counts = "SELECT run_id, count() FROM metrics GROUP BY run_id"
    assert per_shard(store, clickhouse_cluster, counts) == [[(runs[0], POINTS)], [(runs[1], POINTS)]]
    summary = "SELECT run_id, sum(points) FROM metric_summary GROUP BY run_id"
    assert per_shard(store, clickhouse_cluster, summary) == [[(runs[0], POINTS)], [(runs[1], POINTS)]]


def test_a_retried_insert_adds_nothing_on_any_shard(log, store, clickhouse_cluster):
    runs = run_ids_per_shard(store.client, 2)
    log.append(points_of(runs, POINTS))
    writer = BatchWriter(store, GROUP)
    batch = Batch(GROUP)  # no replay skipping: only the insert token can keep the retry out
    consumer = log.consumer(GROUP)
    for message in consumer.poll(100, timeout=1):
        consume(message, batch, None)
    consumer.close()
    writer.write(batch)
    writer.write(batch)  # a retry after an error whose insert had in fact gone through
    writer.close()
    counts = "SELECT run_id, count() FROM metrics GROUP BY run_id"
    assert per_shard(store, clickhouse_cluster, counts) == [[(runs[0], POINTS)], [(runs[1], POINTS)]]
    rollup = store.client.query("SELECT sum(points) FROM metric_rollup").result_rows
    assert rollup == [(2 * POINTS,)]
