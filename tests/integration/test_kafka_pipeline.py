"""SDK → Kafka → projector → ClickHouse server → read API, all real processes and services."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import clickhouse_connect
import httpx
import numpy as np
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

import runstream
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.base import parse_token
from runstream.eventlog.kafka import KafkaLogConsumer, TopicSpec, ensure_topic, events_topic
from runstream.projector.batch import Batch
from runstream.projector.migrate import migrate
from runstream.projector.projector import Projector
from runstream.projector.writer import BatchWriter
from runstream.schemas.codec import encode
from runstream.schemas.events import event
from tests.integration.conftest import Stack
from tests.integration.roles import REPO


@pytest.fixture
def kafka_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
    return stack


def _values(n: int) -> np.ndarray:
    values = np.sin(np.arange(n) / 100.0)
    values[7], values[8], values[9] = np.nan, np.inf, -np.inf
    return values


def test_sdk_over_kafka_reads_back_exactly_what_was_logged(kafka_env: Stack) -> None:
    stack = kafka_env
    stack.start("projector")
    _, api = stack.http_role("api")
    n = 30_000
    values = _values(n)
    with runstream.start_run(
        experiment="churn", run_name="rf-baseline", tags={"team": "ds"}, tracking_uri=stack.kafka_uri
    ) as run:
        run.log_params({"n_estimators": 100, "max_depth": 10})
        for step in range(n):
            run.log_metrics({"loss": float(values[step]), "acc": step / n}, step=step)
        run.set_tag("stage", "done")
    token = run.end()

    client = runstream.Client(api)
    experiment = client.get_experiment_by_name("churn", after=token)
    assert experiment is not None and experiment["experiment_id"] == run.experiment_id
    got = client.get_run(run.run_id, after=token)
    assert got["run_name"] == "rf-baseline" and got["status"] == "FINISHED"
    assert got["params"] == {"n_estimators": "100", "max_depth": "10"}
    assert got["tags"] == {"team": "ds", "stage": "done"}
    assert got["metrics"]["acc"]["step"] == n - 1
    history = client.get_metric_history(run.run_id, "loss")
    assert len(history) == n
    assert history.steps.tolist() == list(range(n))
    assert history.values.tobytes() == values.tobytes()  # NaN and infinities included, bit for bit
    assert set(history.ranks.tolist()) == {0}
    assert history[9].value == -np.inf


def test_four_rank_processes_write_one_run(kafka_env: Stack) -> None:
    stack = kafka_env
    stack.start("projector")
    _, api = stack.http_role("api")
    run_id = uuid.uuid4().hex
    points = 20_000
    env = {**os.environ, "RUNSTREAM_TRACKING_URI": stack.kafka_uri, "RUNSTREAM_RUN_ID": run_id}
    ranks = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.rank_writer", str(points)],
            cwd=REPO,
            env={**env, "RANK": str(rank)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for rank in range(4)
    ]
    tokens = [p.communicate(timeout=300)[0].strip() for p in ranks]
    assert all(p.returncode == 0 for p in ranks)

    client = runstream.Client(api)
    for token in tokens:
        client.get_run(run_id, after=token)  # waits until every rank's writes are applied
    experiment = client.get_experiment_by_name("ranks")
    assert experiment is not None
    runs = client.list_runs([experiment["experiment_id"]])
    assert [r["run_id"] for r in runs] == [run_id]  # four ranks, one run
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == 4 * points
    for rank in range(4):
        mine = history.ranks == rank
        assert np.array_equal(history.values[mine], rank * 1_000_000 + np.arange(points, dtype=np.float64))
    grad = client.get_metric_history(run_id, "grad_norm")
    assert len(grad) == 4 * points


def test_two_projectors_share_the_partitions(kafka_env: Stack) -> None:
    stack = kafka_env
    stack.start("projector")
    stack.start("projector")
    _, api = stack.http_role("api")
    runs = []
    for i in range(8):  # eight runs spread over the four partitions
        with runstream.start_run(experiment="shared", tracking_uri=stack.kafka_uri) as run:
            run.log_metric_arrays("x", np.arange(5000) + i, np.arange(5000))
        runs.append((run, run.end()))
    client = runstream.Client(api)
    for run, token in runs:
        assert len(client.get_metric_history(run.run_id, "x", after=token)) == 5000
    admin = AdminClient({"bootstrap.servers": stack.env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
    group = stack.env["RUNSTREAM_CONSUMER_GROUP"]
    deadline = time.monotonic() + 60  # the second member's join rebalances the group in its own time
    while True:
        description = admin.describe_consumer_groups([group])[group].result(timeout=30)
        assignments = [m.assignment.topic_partitions for m in description.members]
        if len(assignments) == 2 and all(assignments):
            break
        assert time.monotonic() < deadline, assignments
        time.sleep(0.5)


def test_gateway_writes_over_http_and_refuses_bad_input_whole(kafka_env: Stack) -> None:
    stack = kafka_env
    stack.start("projector")
    _, gateway = stack.http_role("gateway")
    _, api = stack.http_role("api")
    with runstream.start_run(experiment="via-gateway", tracking_uri=gateway) as run:
        run.log_params({"p": 1})
        run.log_metric_arrays("m", np.arange(10_000.0), np.arange(10_000))
    token = run.end()
    client = runstream.Client(api)
    assert client.get_run(run.run_id, after=token)["params"] == {"p": "1"}
    assert len(client.get_metric_history(run.run_id, "m")) == 10_000

    good = encode(*event("TagsSet", run_id=run.run_id, tags={"never": "written"}))
    body = len(good).to_bytes(4, "big") + good + b"\x00\x00\x00\x05junk!"
    response = httpx.post(f"{gateway}/api/v1/events", content=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "event 1" in response.json()["message"]
    # The good event in the refused request was not written: a later write's token covers it.
    with runstream.start_run(experiment="via-gateway", tracking_uri=gateway) as later:
        pass
    client.get_run(later.run_id, after=later.end())
    assert "never" not in client.get_run(run.run_id)["tags"]


def test_mlflow_reads_right_after_sdk_writes_through_the_same_gateway_find_the_run(kafka_env: Stack) -> None:
    """MLflow's client carries no consistency token: the gateway's MLflow API waits for the SDK writes it
    relayed itself, so a run just logged is found, not a 404 (the projector starts only afterwards)."""
    stack = kafka_env
    _, gateway = stack.http_role("gateway")
    with runstream.start_run(experiment="then-mlflow", tracking_uri=gateway) as run:
        run.log_params({"p": 1})
    starter = threading.Timer(1.0, stack.start, args=("projector",))
    starter.start()
    try:
        with httpx.Client(base_url=f"{gateway}/api/2.0/mlflow", timeout=60) as http:
            deadline = time.monotonic() + 120
            while (got := http.get("/runs/get", params={"run_id": run.run_id})).status_code == 503:
                assert time.monotonic() < deadline, got.text  # not applied yet: retried, as MLflow's client does
    finally:
        starter.join()
    assert got.status_code == 200, got.text
    assert got.json()["run"]["data"]["params"] == [{"key": "p", "value": "1"}]


def test_corrupt_and_unknown_messages_are_dead_lettered(kafka_env: Stack) -> None:
    stack = kafka_env
    stack.start("projector")
    _, api = stack.http_role("api")
    with runstream.start_run(experiment="dlq", tracking_uri=stack.kafka_uri) as run:
        pass
    token = run.end()
    topic = events_topic(stack.env["RUNSTREAM_TOPIC_PREFIX"])
    producer = Producer({"bootstrap.servers": stack.env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
    valid = encode(*event("TagsSet", run_id=run.run_id, tags={"after": "poison"}))
    producer.produce(topic, b"definitely not avro", key=run.run_id.encode())
    producer.produce(topic, valid[:2] + b"\x01" * 8 + valid[10:], key=run.run_id.encode())
    producer.produce(topic, valid, key=run.run_id.encode())
    producer.flush(30)

    client = runstream.Client(api)
    client.get_run(run.run_id, after=token)
    deadline = time.monotonic() + 60
    while client.get_run(run.run_id)["tags"].get("after") != "poison":
        assert time.monotonic() < deadline, "the event after the poison was never projected"
        time.sleep(0.2)
    ch = clickhouse_connect.get_client(dsn=stack.clickhouse_url.rsplit("/", 1)[0])
    database = stack.clickhouse_url.rsplit("/", 1)[1]
    reasons = [r[0] for r in ch.query(f"SELECT reason FROM {database}.dead_letters ORDER BY offset").result_rows]
    assert len(reasons) == 2
    assert "bad marker" in reasons[0]
    assert "unknown schema fingerprint" in reasons[1]


def test_reads_during_ingestion_never_show_duplicates_or_part_of_a_batch(kafka_env: Stack) -> None:
    """Each SDK flush below is one message of 1,000 consecutive steps: a reader must only ever see
    whole messages (a multiple of 1,000 points, steps 0..n-1 exactly once), in every table."""
    stack = kafka_env
    stack.start("projector")
    _, api = stack.http_role("api")
    client = runstream.Client(api)
    run = runstream.start_run(experiment="live", tracking_uri=stack.kafka_uri)
    done = threading.Event()

    def write() -> None:
        for start in range(0, 200_000, 1000):
            run.log_metric_arrays("x", np.arange(start, start + 1000, dtype=np.float64), np.arange(start, start + 1000))
            run.flush()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen = set()
    while not done.is_set():
        try:
            history = client.get_metric_history(run.run_id, "x")
        except runstream.NotFound:
            continue
        n = len(history)
        assert n % 1000 == 0 and np.array_equal(history.steps, np.arange(n))
        [summary] = client.get_run_summaries([run.run_id]) or [{"count": 0, "last_step": -1}]
        assert summary["count"] % 1000 == 0 and summary["last_step"] == summary["count"] - 1
        sampled = client.get_metric_history(run.run_id, "x", max_points=50)
        assert sum(sampled.get("count", [])) % 1000 == 0
        seen.add(n)
    writer.join()
    assert len(seen) >= 3  # the reads really fell in the middle of the stream
    assert len(client.get_metric_history(run.run_id, "x", after=run.end())) == 200_000


def _topic_config(stack: Stack, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": stack.env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {k: v.value for k, v in admin.describe_configs([resource])[resource].result(timeout=30).items()}


def test_the_topic_keeps_every_event_unless_told_otherwise(kafka_env: Stack) -> None:
    stack = kafka_env
    stack.start("gateway")  # creates the topic with the defaults
    topic = events_topic(stack.env["RUNSTREAM_TOPIC_PREFIX"])
    config = _topic_config(stack, topic)
    assert (config["retention.ms"], config["min.insync.replicas"]) == ("-1", "1")  # one broker: factor 1
    admin = AdminClient({"bootstrap.servers": stack.env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
    assert len(admin.list_topics(topic, timeout=30).topics[topic].partitions[0].replicas) == 1

    stack.env["RUNSTREAM_TOPIC_PREFIX"] = prefix = f"{stack.env['RUNSTREAM_TOPIC_PREFIX']}week."
    stack.start("projector", "--retention-ms", str(7 * 24 * 3600 * 1000), "--partitions", "2")
    topic = events_topic(prefix)
    assert _topic_config(stack, topic)["retention.ms"] == str(7 * 24 * 3600 * 1000)
    assert len(admin.list_topics(topic, timeout=30).topics[topic].partitions) == 2


def test_a_replication_factor_beyond_the_cluster_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="replication factor 3 needs 3 brokers; the cluster has 1"):
        TopicSpec(replication_factor=3).new_topic("t", brokers=1)
    with pytest.raises(ValueError, match=r"min.insync.replicas must be between 1 and the replication factor \(3\)"):
        TopicSpec(min_insync_replicas=4).new_topic("t", brokers=3)
    spec = TopicSpec().new_topic("t", brokers=3)
    assert (spec.replication_factor, (spec.config or {})["min.insync.replicas"]) == (3, "2")


@pytest.mark.parametrize("inserts_in_flight", [1, 2])
def test_a_projector_keeps_one_write_in_flight_per_lane(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, inserts_in_flight: int
) -> None:
    """Runs on partitions of both lanes: with 2 lanes their batches are written at once, with 1 one
    after another; either way every point once, in order."""
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
    bootstrap, group = stack.env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"], stack.env["RUNSTREAM_CONSUMER_GROUP"]
    topic = events_topic(stack.env["RUNSTREAM_TOPIC_PREFIX"])
    ensure_topic(bootstrap, topic, TopicSpec(partitions=4))
    by_lane: dict[int, runstream.Run] = {}
    while len(by_lane) < 2:  # a run's partition: where a write of only its own events advanced the log
        run = runstream.start_run(experiment="lanes", tracking_uri=stack.kafka_uri)
        before = parse_token(run.flush())
        run.log_metric("probe", 0.0)
        (partition,) = [p for p, offset in parse_token(run.flush()).items() if offset > before.get(p, -1)]
        by_lane.setdefault(partition % 2, run)
    writing, most = 0, 0
    lock = threading.Lock()
    write = BatchWriter.write

    def slow_write(self: BatchWriter, batch: Batch) -> None:
        nonlocal writing, most
        with lock:
            writing += 1
            most = max(most, writing)
        time.sleep(0.3)  # long enough for the other lane's batch to be due meanwhile
        write(self, batch)
        with lock:
            writing -= 1

    monkeypatch.setattr(BatchWriter, "write", slow_write)
    store = ClickHouse(stack.clickhouse_url)
    migrate(store)
    projector = Projector(
        lambda handlers: KafkaLogConsumer(bootstrap, topic, group, handlers),
        store,
        group,
        max_rows=10_000,
        inserts_in_flight=inserts_in_flight,
    )
    worker = threading.Thread(target=projector.run)
    worker.start()
    try:
        points = 100_000
        for first in range(0, points, 10_000):
            for run in by_lane.values():
                steps = np.arange(first, first + 10_000)
                run.log_metric_arrays("x", steps.astype(np.float64), steps)
        tokens = [run.end() for run in by_lane.values()]
        client = runstream.Client(stack.http_role("api")[1])
        for run, token in zip(by_lane.values(), tokens, strict=True):
            history = client.get_metric_history(run.run_id, "x", after=token)
            assert np.array_equal(history.values, np.arange(points, dtype=np.float64))
    finally:
        projector.stop()
        worker.join(timeout=60)
    assert most == inserts_in_flight
