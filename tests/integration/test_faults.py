"""Dependencies failing under load: the pipeline waits them out, loses nothing, answers 503 meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import clickhouse_connect
import httpx
import numpy as np
import pytest

import runstream
from tests.integration.conftest import Stack
from tests.services.clickhouse_server import start_clickhouse
from tests.services.kafka_broker import KafkaBroker
from tests.services.process import cpu_seconds

OUTAGE_S = 30.0
CHUNK = 20_000


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
    stack.start("projector")
    _, gateway = stack.http_role("gateway")
    _, api = stack.http_role("api")
    runs = [runstream.start_run(experiment="broker-restart", tracking_uri=uri) for uri in (stack.kafka_uri, gateway)]
    chunks, errors = 40, list[BaseException]()
    writers = [threading.Thread(target=_write, args=(run, chunks, errors)) for run in runs]
    for writer in writers:
        writer.start()
    time.sleep(2.0)
    kafka.restart()  # SIGTERM, then the same ports and data
    for writer in writers:
        writer.join()
    assert not errors, errors
    client = runstream.Client(api)
    for run in runs:
        history = client.get_metric_history(run.run_id, "x", after=run.end())
        assert np.array_equal(history.values, np.arange(chunks * CHUNK, dtype=np.float64))  # all, once
