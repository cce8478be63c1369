"""`runstream archive` and `runstream replay` against the real services: every projection rebuilt from
the log answers exactly as before (embedded and server), the archive stands in for what Kafka's
retention deleted, and a replay while the pipeline keeps writing loses nothing at the swap."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

import runstream
from runstream.artifacts.local import LocalStore
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.base import Positions, format_token, merge_positions, parse_token
from runstream.eventlog.kafka_ranges import bounds
from runstream.eventlog.segments import archived_through, list_segments
from runstream.store.series import MAX_RUNS
from tests.integration.conftest import Stack
from tests.integration.roles import REPO, Role
from tests.services.ports import free_port

MLFLOW = "/api/2.0/mlflow"
POINTS = 2_000


def _runstream(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """`python -m runstream ARGS`; its stdout (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "runstream", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _seed(uri: str, experiment: str, runs: int = 3) -> list[str]:
    """Runs with params, tags and metrics, and a registered model with versions, an alias and stage
    history, written through the native SDK and MLflow's REST API."""
    ids: list[str] = []
    for i in range(runs):
        with runstream.start_run(experiment=experiment, run_name=f"r{i}", tags={"team": "a"}, tracking_uri=uri) as run:
            run.log_params({"lr": 0.1 * (i + 1), "layers": i % 2})
            steps = np.arange(POINTS)
            run.log_metric_arrays("loss", np.exp(-steps / 500) + i, steps)
            run.log_metric_arrays("acc", steps / POINTS, steps)
            run.set_tag("stage", "done")
        ids.append(run.run_id)
    model = f"{experiment}-model"
    with httpx.Client(base_url=uri + MLFLOW, timeout=30) as http:
        for path, body in [
            ("/registered-models/create", {"name": model}),
            ("/model-versions/create", {"name": model, "source": f"runs:/{ids[0]}/model", "run_id": ids[0]}),
            ("/model-versions/create", {"name": model, "source": f"runs:/{ids[1]}/model", "run_id": ids[1]}),
            ("/registered-models/alias", {"name": model, "alias": "champion", "version": "2"}),
            ("/model-versions/transition-stage", {"name": model, "version": "1", "stage": "Production"}),
        ]:
            http.post(path, json=body).raise_for_status()
    return ids


def _answers(uri: str, experiment: str, ids: list[str]) -> dict[str, Any]:
    """One answer of each query class, as plain values."""
    client = runstream.Client(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    model = f"{experiment}-model"
    compared = client.compare_runs(ids, ["loss", "acc"], max_points=100)
    with httpx.Client(base_url=uri + MLFLOW, timeout=30) as http:

        def mlflow(path: str, **params: Any) -> Any:
            response = http.get(path, params=params)
            response.raise_for_status()
            return response.json()

        return {
            "runs": [client.get_run(run_id) for run_id in ids],
            "history": [client.get_metric_history(run_id, "loss").values.tolist() for run_id in ids],
            "series": [{k: np.asarray(v).tolist() for k, v in s.items()} for s in compared["series"]],
            "summaries": client.get_run_summaries(ids),
            "aggregate": client.aggregate_runs(ids, "loss", ["params.layers"], max_points=50),
            "search": client.search_runs([exp["experiment_id"]], "metrics.loss > 1 and params.layers = '0'")[0],
            "model_history": client.get_model_history(model),
            "mlflow_run": mlflow("/runs/get", run_id=ids[0]),
            "mlflow_history": mlflow("/metrics/get-history", run_id=ids[1], metric_key="acc"),
            "mlflow_search": http.post(
                "/runs/search", json={"experiment_ids": [exp["experiment_id"]], "order_by": ["metrics.loss DESC"]}
            ).json(),
            "mlflow_model": mlflow("/registered-models/get", name=model),
            "mlflow_versions": mlflow("/model-versions/search", filter=f"name='{model}'"),
        }


def _drop(url: str, database: str) -> None:
    """Drops a database in another process (the embedded engine opens one data directory per process)."""
    client = f"clickhouse_connect.get_client(dsn={url!r})"
    code = f"import clickhouse_connect; {client}.command('DROP DATABASE {database} SYNC')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_embedded_replay_after_the_database_is_dropped_answers_as_before(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    serve = Role(tmp_path, "serve", "--port", str(port), "--data-dir", str(data))
    uri = f"http://127.0.0.1:{port}"
    try:
        ids = _seed(uri, "embedded")
        before = _answers(uri, "embedded", ids)
    finally:
        serve.stop()
    _drop(f"chdb://{data / 'clickhouse'}", "runstream")
    out = _runstream("replay", "--data-dir", str(data))
    assert f"{3 * 2 * POINTS:,} metric points" in out and "swapped into runstream" in out
    serve.start()
    try:
        assert _answers(uri, "embedded", ids) == before
    finally:
        serve.stop()

    parquet = tmp_path / "export"  # the rebuilt projections, as Parquet
    _runstream("export", "--data-dir", str(data), "--experiment", "embedded", "--out", str(parquet))
    metrics, params = (
        pl.read_parquet(parquet / "metrics" / "*.parquet"),
        pl.read_parquet(parquet / "params" / "*.parquet"),
    )
    assert metrics.height == 3 * 2 * POINTS and set(metrics["run_id"]) == set(ids)
    loss = metrics.filter((pl.col("run_id") == ids[1]) & (pl.col("key") == "loss")).sort("step")
    assert loss["value"].to_list() == before["history"][1]
    assert dict(params.filter(pl.col("run_id") == ids[2]).select("key", "value").rows()) == {
        "layers": "0",
        "lr": "0.30000000000000004",
    }
    assert pl.read_parquet(parquet / "runs" / "*.parquet")["status"].to_list() == ["FINISHED"] * 3
    (parquet / "metrics" / "part-00000.parquet").unlink()  # interrupted: only what is missing is written
    again = _runstream("export", "--data-dir", str(data), "--out", str(parquet))
    assert f"metrics {3 * 2 * POINTS:,} rows" in again and "params 0 rows" in again


def _topic_config(bootstrap: str, topic: str, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def _keep_writing(uri: str, experiment: str, stop: threading.Event, written: list[tuple[str, str]]) -> None:
    while not stop.is_set():
        with runstream.start_run(experiment=experiment, tracking_uri=uri) as run:
            run.log_metric_arrays("x", np.arange(500.0), np.arange(500))
        written.append((run.run_id, run.end()))


def test_replay_from_archive_and_kafka_while_the_pipeline_writes(stack: Stack, tmp_path: Path) -> None:
    """The topic's short retention deletes what the archive holds; the replay reads it there, and swaps
    in under a live projector while an SDK keeps logging: nothing written meanwhile is lost."""
    env = stack.env
    bootstrap, topic = env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"], env["RUNSTREAM_TOPIC_PREFIX"] + "events"
    # Segments roll after 1 s, so the seed's first half ends up in closed segments retention can delete.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1, config={"segment.ms": "1000"})])[topic].result(timeout=30)
    projector = stack.start("projector")
    _, gateway = stack.http_role("gateway")  # the read API and MLflow's too
    ids = _seed(gateway, "archived", runs=2)
    time.sleep(1.2)
    ids += _seed(gateway, "archived-later", runs=2)
    before = _answers(gateway, "archived", ids[:2]), _answers(gateway, "archived-later", ids[2:])

    archive = tmp_path / "archive"
    cli_env = {**env, "RUNSTREAM_ARCHIVE_ROOT": str(archive)}
    _runstream("archive", env=cli_env)
    reach = archived_through(list_segments(LocalStore(archive), topic))
    assert reach == {p: high for p, (_, high) in bounds(bootstrap, topic).items() if high > 0}

    _topic_config(bootstrap, topic, **{"retention.ms": "1000"})
    deadline = time.monotonic() + 60
    while not any(low > 0 for low, _ in bounds(bootstrap, topic).values()):
        assert time.monotonic() < deadline, "Kafka's retention deleted nothing within 60 s"
        time.sleep(0.5)
    _topic_config(bootstrap, topic, **{"retention.ms": "-1"})

    stop, written = threading.Event(), list[tuple[str, str]]()
    writer = threading.Thread(target=_keep_writing, args=(gateway, "during", stop, written))
    writer.start()
    try:
        time.sleep(0.5)
        out = _runstream("replay", env=cli_env)
    finally:
        time.sleep(0.5)
        stop.set()
        writer.join()
    assert "swapped into" in out
    assert (_answers(gateway, "archived", ids[:2]), _answers(gateway, "archived-later", ids[2:])) == before

    client = runstream.Client(gateway)
    assert len(written) >= 2
    # Before, during and after the swap: every point, once (one bucket a step, read from the points).
    applied: Positions = {}
    for _, token in written:
        merge_positions(applied, parse_token(token))
    runs = [run_id for run_id, _ in written]
    for first in range(0, len(runs), MAX_RUNS):
        some = runs[first : first + MAX_RUNS]
        series = client.compare_runs(some, ["x"], max_points=500, after=format_token(applied))["series"]
        assert [s["run_id"] for s in series] == some
        for s in series:
            assert (s["count"].tolist(), s["first"].tolist()) == ([1] * 500, list(np.arange(500.0)))

    # The database lost while the projector is down (a ClickHouse disk gone): replay rebuilds it all.
    projector.stop()
    live = ClickHouse(env["RUNSTREAM_CLICKHOUSE_URL"])
    live.client.command(f"DROP DATABASE {live.url.database} SYNC")
    assert "swapped into" in _runstream("replay", env=cli_env)
    projector.start()
    assert (_answers(gateway, "archived", ids[:2]), _answers(gateway, "archived-later", ids[2:])) == before
    for run_id, token in (written[0], written[-1]):  # written before the first swap, and after it
        assert client.get_metric_history(run_id, "x", after=token).values.tolist() == list(np.arange(500.0))
