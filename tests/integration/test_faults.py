"""Dependencies failing under load: the pipeline waits them out, loses nothing, answers 503 meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import clickhouse_connect
import httpx
import numpy as np
import pytest

import runstream
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.kafka import KafkaLogConsumer, TopicSpec, ensure_topic, events_topic
from runstream.projector import metrics
from runstream.projector.migrate import migrate
from runstream.projector.projector import Projector
from tests.integration.conftest import Stack
from tests.services.clickhouse_server import start_clickhouse
from tests.services.kafka_broker import KafkaBroker
from tests.services.process import cpu_seconds

OUTAGE_S = 20.0  # several of the projector's write retries (backing off up to 5 s each)
CHUNK = 20_000
SESSION_S = 6.0  # the projector's Kafka session timeout (eventlog/kafka.py)


def test_clickhouse_outage_is_waited_out_and_answered_with_503(
    tmp_path: Path, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clickhouse = start_clickhouse(tmp_path / "clickhouse")  # this test's own: it is stopped midway
    stack = Stack(tmp_path, kafka, clickhouse)
    try:
        monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
        projector, projector_url = stack.http_role("projector")
        _, api = stack.http_role("api")
        run = runstream.start_run(experiment="outage", tracking_uri=stack.kafka_uri)
        steps = np.arange(CHUNK)
        run.log_metric_arrays("x", steps.astype(np.float64), steps)
        client = runstream.Client(api, retry_for_s=0)
        assert client.get_run(run.run_id, after=run.flush())["run_id"] == run.run_id

        clickhouse.stop()
        cpu_before, outage_end = cpu_seconds(projector.pid or 0), time.monotonic() + OUTAGE_S
        written = CHUNK
        while time.monotonic() < outage_end:  # writers go on: Kafka acknowledges them
            run.log_metric_arrays("x", np.arange(written, written + CHUNK, dtype=np.float64), steps + written)
            run.flush()
            written += CHUNK
            time.sleep(1.0)
        read = httpx.get(f"{api}/api/v1/runs/{run.run_id}")
        assert read.status_code == 503 and read.headers["Retry-After"]
        assert read.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        for url in (api, projector_url):
            ready = httpx.get(f"{url}/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["clickhouse"] != "ok"
        assert projector.pid is not None, projector.log_tail()
        # Backing off, not spinning: well under a tenth of one core over the outage.
        assert cpu_seconds(projector.pid or 0) - cpu_before < OUTAGE_S / 10

        clickhouse.start()  # same ports, same data
        token = run.end()
        history = runstream.Client(api).get_metric_history(run.run_id, "x", after=token)
        assert np.array_equal(history.values, np.arange(written, dtype=np.float64))  # all, once, in order
        assert httpx.get(f"{projector_url}/ready").status_code == 200
        server, database = stack.clickhouse_url.rsplit("/", 1)
        stored = clickhouse_connect.get_client(dsn=server, database=database)
        assert stored.query("SELECT count() FROM metrics").result_rows == [(written,)]  # nothing twice
    finally:
        stack.close()
        clickhouse.stop()


def _write(run: runstream.Run, chunks: int, errors: list[BaseException]) -> None:
    """Values are the point's index, so loss or duplication shows."""
    try:
        for i in range(chunks):
            first = i * CHUNK
            run.log_metric_arrays(
                "x", np.arange(first, first + CHUNK, dtype=np.float64), np.arange(first, first + CHUNK)
            )
            run.flush()
            time.sleep(0.2)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def test_broker_restart_while_producers_write_loses_and_doubles_nothing(
    stack: Stack, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
    _, projector = stack.http_role("projector")
    _, gateway = stack.http_role("gateway")
    _, api = stack.http_role("api")
    runs = [runstream.start_run(experiment="broker-restart", tracking_uri=uri) for uri in (stack.kafka_uri, gateway)]
    chunks, errors = 40, list[BaseException]()
    writers = [threading.Thread(target=_write, args=(run, chunks, errors)) for run in runs]
    for writer in writers:
        writer.start()
    time.sleep(2.0)
    kafka.stop()
    # Down for longer than the projector's consumer session: its group membership is gone when the
    # broker is back, so its next commit is refused (Unknown member) and it has to rejoin.
    time.sleep(SESSION_S * 1.5)
    kafka.start()  # the same ports and data
    for writer in writers:
        writer.join()
    assert not errors, errors
    client = runstream.Client(api)
    for run in runs:
        history = client.get_metric_history(run.run_id, "x", after=run.end())
        assert np.array_equal(history.values, np.arange(chunks * CHUNK, dtype=np.float64))  # all, once
    assert httpx.get(f"{projector}/ready").json()["checks"]["projector"] == "ok"


def _points(store: ClickHouse) -> int:
    return int(store.client.query("SELECT count() FROM metrics").result_rows[0][0])


def _chunk(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and steps of the i-th chunk of a run whose point n has the value n."""
    steps = np.arange(i * CHUNK, (i + 1) * CHUNK)
    return steps.astype(np.float64), steps


def _eventually(check: Callable[[], bool], worker: threading.Thread, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert worker.is_alive(), "the projector thread died"
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_a_commit_refused_after_the_group_moved_on_is_survived(
    tmp_path: Path, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full batch waiting behind an insert that outlasts max.poll.interval.ms (its lane holds one
    write at a time): the member stops polling, is out of the group when it commits (refused),
    rejoins, reads the batches again and skips what the tables hold."""
    clickhouse = start_clickhouse(tmp_path / "clickhouse")  # this test's own: it is stopped midway
    prefix, group, poll_interval_s = f"t{tmp_path.name[-12:]}.", f"g-{tmp_path.name[-12:]}", 7.0
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", prefix)
    topic = events_topic(prefix)
    ensure_topic(kafka.bootstrap, topic, TopicSpec(partitions=2))
    store = ClickHouse(f"{clickhouse.url}/refused")
    migrate(store)
    config = {"max.poll.interval.ms": int(poll_interval_s * 1000), "session.timeout.ms": int(SESSION_S * 1000)}
    projector = Projector(
        lambda handlers: KafkaLogConsumer(kafka.bootstrap, topic, group, handlers, config), store, group, CHUNK
    )
    worker = threading.Thread(target=projector.run)
    worker.start()
    refused_before = metrics.COMMIT_FAILURES._value.get()
    try:
        run = runstream.start_run(experiment="refused", tracking_uri=f"kafka://{kafka.bootstrap}")
        run.log_metric_arrays("x", *_chunk(0))
        run.flush()
        _eventually(lambda: _points(store) == CHUNK, worker)

        # The next batch's insert now retries for longer than the poll interval, and the one after it
        # (full: max_rows) waits for it, so the projector stops polling.
        clickhouse.stop()
        for chunk in (1, 2):
            run.log_metric_arrays("x", *_chunk(chunk))
            run.flush()
        time.sleep(poll_interval_s * 1.5)
        clickhouse.start()
        _eventually(lambda: metrics.COMMIT_FAILURES._value.get() > refused_before, worker)
        run.log_metric_arrays("x", *_chunk(3))
        run.flush()
        _eventually(lambda: _points(store) == 4 * CHUNK, worker)
        stored = store.client.query("SELECT value FROM metrics ORDER BY value").result_columns[0]
        assert np.array_equal(np.array(stored), np.arange(4 * CHUNK, dtype=np.float64))  # all, once
    finally:
        projector.stop()
        worker.join(timeout=60)
        clickhouse.stop()
