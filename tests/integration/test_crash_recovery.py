"""Crashes in the middle of a stream: nothing acknowledged is lost, nothing is answered twice."""

from __future__ import annotations

import threading
import time

import clickhouse_connect
import numpy as np
import pytest

import runstream
from tests.integration.conftest import Stack
from tests.integration.roles import Role
from tests.services.ports import free_port

CHUNK = 50_000
KILLS = 5  # kill -9 of the projector at this many random points of the stream


def stream(run: runstream.Run, total: int, pause: float) -> None:
    """Values are the point's index, so loss or duplication shows."""
    for start in range(0, total, CHUNK):
        run.log_metric_arrays("x", np.arange(start, start + CHUNK, dtype=np.float64), np.arange(start, start + CHUNK))
        run.flush()
        time.sleep(pause)


def test_projector_killed_mid_stream_answers_every_point_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTREAM_TOPIC_PREFIX", stack.env["RUNSTREAM_TOPIC_PREFIX"])
    total = 1_000_000
    projector = stack.start("projector")
    _, api = stack.http_role("api")
    server, database = stack.clickhouse_url.rsplit("/", 1)
    ch = clickhouse_connect.get_client(dsn=server, database=database)

    def stored() -> int:
        return int(ch.query("SELECT count() FROM metrics").result_rows[0][0])

    run = runstream.start_run(experiment="crash", tracking_uri=stack.kafka_uri)
    writer = threading.Thread(target=stream, args=(run, total, 0.15))
    writer.start()
    rng = np.random.default_rng()
    for threshold in sorted(rng.integers(total // 10, total * 8 // 10, size=KILLS)):
        deadline = time.monotonic() + 120
        while stored() < threshold:
            assert time.monotonic() < deadline, projector.log_tail()
            time.sleep(0.01)
        projector.kill9()  # wherever it is: decoding, inserting, or between insert and commit
        projector.start()
    writer.join()
    token = run.end()

    client = runstream.Client(api)
    history = client.get_metric_history(run.run_id, "x", after=token)
    assert len(history) == total
    assert np.array_equal(history.values, np.arange(total, dtype=np.float64))


def test_serve_killed_mid_stream_loses_nothing_acknowledged(tmp_path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    serve = Role(tmp_path, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    total = 500_000
    run = runstream.start_run(experiment="restart", tracking_uri=uri)
    writer = threading.Thread(target=stream, args=(run, total, 0.1))
    writer.start()
    time.sleep(1.0)
    serve.kill9()  # the SDK's sends fail meanwhile and are retried with the same events
    time.sleep(1.0)
    serve.start()
    writer.join()
    token = run.end()

    client = runstream.Client(uri)
    history = client.get_metric_history(run.run_id, "x", after=token)
    assert np.array_equal(history.values, np.arange(total, dtype=np.float64))
    assert client.get_run(run.run_id)["status"] == "FINISHED"

    assert serve.stop()  # a clean stop and start keeps everything too
    serve.start()
    assert len(runstream.Client(uri).get_metric_history(run.run_id, "x")) == total
    serve.stop()
