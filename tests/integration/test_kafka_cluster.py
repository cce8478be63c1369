"""Kafka as a cluster: a broker killed mid-stream on a 3-node cluster, and projector instances coming
and going while millions of points flow. Real brokers, ClickHouse and role processes throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import clickhouse_connect
import httpx
import numpy as np
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec  # type: ignore[attr-defined]

import runstream
from runstream.eventlog.kafka import events_topic
from tests.integration.conftest import Stack
from tests.services.clickhouse_server import ClickHouseServer
from tests.services.kafka_broker import KafkaCluster

DEADLINE_S = 120.0  # for any one condition: generous, a loaded 2-core machine is slow, not broken


def _until(
    check: Callable[[], bool], what: str, timeout: float = DEADLINE_S, *, alive: Callable[[], None] | None = None
) -> None:
    started = time.monotonic()
    while not check():
        if alive is not None:
            alive()
        assert time.monotonic() < started + timeout, f"not reached in {timeout:.0f} s: {what}"
        time.sleep(0.2)
    print(f"{time.strftime('%H:%M:%S')} +{time.monotonic() - started:5.1f} s  {what}", flush=True)  # with -s


class Writer(threading.Thread):
    """Logs chunks of `chunk` points to one run, each point's value its index (so loss or duplication
    shows), flushing each (acknowledged by Kafka), until told to stop and at least `minimum` chunks."""

    def __init__(self, run: runstream.Run, chunk: int, minimum: int = 0, pause: float = 0.1) -> None:
        super().__init__(name=f"writer-{run.run_id[:6]}")
        self.run_, self.chunk, self.minimum, self.pause = run, chunk, minimum, pause
        self.chunks = 0
        self.error: BaseException | None = None
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            while self.chunks < self.minimum or not self.halt.is_set():
                first = self.chunks * self.chunk
                steps = np.arange(first, first + self.chunk)
                self.run_.log_metric_arrays("x", steps.astype(np.float64), steps)
                self.run_.flush()
                self.chunks += 1
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    @property
    def points(self) -> int:
        return self.chunks * self.chunk

    def alive(self) -> None:
        assert self.error is None, repr(self.error)
        assert self.is_alive(), "the writer stopped early"

    def finish(self) -> int:
        self.halt.set()
        self.join(timeout=300)
        assert not self.is_alive() and self.error is None, repr(self.error)
        return self.points


def _env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> tuple[str, AdminClient]:
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
    topic = events_topic(stack.env["RUNSTREAM_TOPIC_PREFIX"])
    return topic, AdminClient({"bootstrap.servers": stack.env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})


def _stored_points(stack: Stack) -> int:
    server, database = stack.clickhouse_url.rsplit("/", 1)
    client = clickhouse_connect.get_client(dsn=server, database=database)
    return int(client.query("SELECT count() FROM metrics").result_rows[0][0])


def _assert_exactly_once(stack: Stack, api: str, writers: list[Writer]) -> int:
    client, total = runstream.Client(api), 0
    for writer in writers:
        history = client.get_metric_history(writer.run_.run_id, "x", after=writer.run_.end())
        assert np.array_equal(history.values, np.arange(writer.points, dtype=np.float64))  # all, once, in order
        total += writer.points
    assert _stored_points(stack) == total  # not one row twice, in any run
    return total


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def stack_on_cluster(tmp_path: Path, kafka_cluster: KafkaCluster, clickhouse: ClickHouseServer) -> Iterator[Stack]:
    s = Stack(tmp_path, kafka_cluster, clickhouse)
    yield s
    s.close()


def test_a_broker_killed_mid_stream_on_a_3_broker_cluster_loses_and_doubles_nothing(
    stack_on_cluster: Stack, kafka_cluster: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = stack_on_cluster
    topic, admin = _env(stack, monkeypatch)
    _, projector = stack.http_role("projector")  # creates the topic: the cluster's default, factor 3
    _, gateway = stack.http_role("gateway")
    _, api = stack.http_role("api")
    partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
    assert {len(p.replicas) for p in partitions.values()} == {3}
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    assert admin.describe_configs([resource])[resource].result(timeout=30)["min.insync.replicas"].value == "2"

    runs = [runstream.start_run(experiment="cluster-kill", tracking_uri=uri) for uri in (stack.kafka_uri, gateway)]
    writers = [Writer(run, chunk=20_000) for run in runs]

    def all_alive() -> None:
        for w in writers:
            w.alive()

    _until(lambda: all(w.chunks >= 3 for w in writers), "the first chunks acknowledged", alive=all_alive)
    # The node leading most of the topic's partitions: its leaderships must move while producers write.
    leaders = [p.leader for p in admin.list_topics(topic, timeout=30).topics[topic].partitions.values()]
    victim = kafka_cluster.node(max(set(leaders), key=leaders.count))
    victim.kill()  # kill -9: no controlled shutdown, no leadership handed over

    def moved() -> bool:
        meta = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
        return all(p.leader not in (victim.node_id, -1) for p in meta)

    _until(moved, "every partition led by a surviving node", alive=all_alive)
    during = [w.chunks for w in writers]
    _until(lambda: all(w.chunks >= c + 3 for w, c in zip(writers, during, strict=True)), "writes with one node down")
    victim.start()  # the same ports and log dir
    kafka_cluster.wait_registered()
    after = [w.chunks for w in writers]
    _until(lambda: all(w.chunks >= c + 3 for w, c in zip(writers, after, strict=True)), "writes after the restart")
    for writer in writers:
        writer.finish()  # no producer saw an error: acks=all and idempotence rode out the leader moves

    total = _assert_exactly_once(stack, api, writers)
    print(f"{time.strftime('%H:%M:%S')} {total:,} points written, each read back once", flush=True)
    assert total >= 2 * 9 * 20_000

    def in_sync() -> bool:
        meta = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
        return all(len(p.replicas) == 3 and len(p.isrs) == 3 for p in meta)

    _until(in_sync, "the restarted node back in every partition's in-sync replicas")
    _until(lambda: _ready(projector), "the projector ready again")
    assert httpx.get(f"{projector}/ready").json()["checks"]["projector"] == "ok"


def _group_members(admin: AdminClient, group: str) -> dict[str, list[int]]:
    """Member id: its assigned partitions."""
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return {m.member_id: [tp.partition for tp in m.assignment.topic_partitions] for m in description.members}


def _lag(admin: AdminClient, topic: str, group: str, partitions: int) -> int:
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])]
    committed = admin.list_consumer_group_offsets(request)[group].result(timeout=30).topic_partitions
    ends = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)})
    high = {tp.partition: future.result(timeout=30).offset for tp, future in ends.items()}
    return sum(high[tp.partition] - max(tp.offset, 0) for tp in committed)


def test_projectors_added_and_removed_while_millions_of_points_flow(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, admin = _env(stack, monkeypatch)
    group, partitions = stack.env["RUNSTREAM_CONSUMER_GROUP"], int(stack.env["RUNSTREAM_KAFKA_PARTITIONS"])
    first = stack.start("projector")
    _, api = stack.http_role("api")
    # Four runs (keys) so that the partitions, and so every projector, carry part of the stream.
    runs = [runstream.start_run(experiment="churn", tracking_uri=stack.kafka_uri) for _ in range(4)]
    writers = [Writer(run, chunk=25_000, minimum=24, pause=0.4) for run in runs]  # >= 4 x 600k points, ~250k/s

    def all_alive() -> None:
        for w in writers:
            w.alive()

    def members(n: int, other_than: frozenset[str] = frozenset()) -> Callable[[], bool]:
        def check() -> bool:
            m = _group_members(admin, group)
            return len(m) == n and all(m.values()) and set(m) != other_than

        return check

    _until(lambda: _stored_points(stack) > 0, "the first projector writing", alive=all_alive)
    second = stack.start("projector")
    _until(members(2), "two projectors sharing the partitions", alive=all_alive)
    stored = _stored_points(stack)
    _until(lambda: _stored_points(stack) > stored, "points still stored with two members", alive=all_alive)
    before = frozenset(_group_members(admin, group))
    first.kill()  # kill -9 mid-batch: its uncommitted batches are read again by the others
    third = stack.start("projector")
    # Until the dead member is out of the group (its session expired) and the new one shares the work.
    _until(members(2, other_than=before), "the dead member's partitions taken over", alive=all_alive)
    all_alive()  # the stream flowed through every change
    total = sum(w.finish() for w in writers)
    print(f"{time.strftime('%H:%M:%S')} {total:,} points written", flush=True)
    assert total >= 2_400_000

    assert _assert_exactly_once(stack, api, writers) == total
    _until(lambda: _lag(admin, topic, group, partitions) == 0, "consumer lag back to 0")
    assert second.pid is not None and third.pid is not None
