"""`runstream serve`: the embedded default, one process, through the SDK's HTTP transport."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import runstream
from runstream.eventlog.base import format_token
from runstream.schemas.codec import encode
from runstream.schemas.events import event, experiment_id_for_name, partition_key
from runstream.schemas.framing import MAX_EVENTS
from runstream.sdk.transport import HttpTransport
from tests.integration.roles import REPO

INVALID = "INVALID_PARAMETER_VALUE"


def test_sdk_to_serve_reads_back_what_was_logged(serve: str) -> None:
    values = np.linspace(0, 1, 5000)
    values[3] = np.nan
    with runstream.start_run(experiment="embedded", run_name="first", tags={"team": "ds"}, tracking_uri=serve) as run:
        run.log_params({"lr": 0.01})
        for step, value in enumerate(values):
            run.log_metric("loss", float(value), step=step)
        run.delete_tag("team")
    token = run.end()
    client = runstream.Client(serve)
    got = client.get_run(run.run_id, after=token)
    assert (got["run_name"], got["status"], got["params"], got["tags"]) == ("first", "FINISHED", {"lr": "0.01"}, {})
    assert got["metrics"]["loss"]["step"] == 4999
    history = client.get_metric_history(run.run_id, "loss")
    assert history.values.tobytes() == values.tobytes()
    names = [e["name"] for e in client.list_experiments()]
    assert "embedded" in names
    assert [r["run_id"] for r in client.list_runs([run.experiment_id])] == [run.run_id]


def test_the_readmes_first_example_runs_as_written(serve: str) -> None:
    readme = (REPO / "README.md").read_text()
    example = readme.split("## Logging from training code", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(example.replace("http://127.0.0.1:5000", serve), scope)
    client, run = scope["client"], scope["run"]
    assert client.get_run(run.run_id)["params"] == {"n_estimators": "100", "max_depth": "10"}
    assert len(client.get_metric_history(run.run_id, "grad_norm")) == 100_000


def test_a_read_after_the_run_ends_sees_it_without_a_token(serve: str) -> None:
    """The README's first example: the client reads right after the `with` block, in one process."""
    client = runstream.Client(serve)
    for i in range(6):
        with runstream.start_run(experiment="no-token", run_name=f"r{i}", tracking_uri=serve) as run:
            run.log_params({"i": i})
            run.log_metric_arrays("x", np.arange(1000, dtype=np.float64), np.arange(1000))
        got = client.get_run(run.run_id)
        assert (got["status"], got["params"]) == ("FINISHED", {"i": str(i)})
        assert len(client.get_metric_history(run.run_id, "x")) == 1000


def test_many_short_runs_in_threads_all_end_finished_with_their_data(serve: str) -> None:
    """A sweep of short runs, sequential and from threads at once (they share the process's sender and
    its requests): each run, once its `with` block is left, reads back FINISHED with its own params,
    tags and metrics, with no token."""

    def one_run(i: int) -> str:
        tags = {"t0": f"a{i}", "t1": f"b{i}", "t2": f"c{i}"}
        with runstream.start_run(experiment="sweep", run_name=f"s{i}", tags=tags, tracking_uri=serve) as run:
            run.log_params({f"p{j}": i * 10 + j for j in range(5)})
            run.log_metrics({"m0": i, "m1": i + 0.5, "m2": -i}, step=i)
        return run.run_id

    ids = [one_run(i) for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        ids += list(pool.map(one_run, range(20, 100)))
    client = runstream.Client(serve)
    for i, run_id in enumerate(ids):
        got = client.get_run(run_id)
        assert (got["run_name"], got["status"]) == (f"s{i}", "FINISHED")
        assert got["params"] == {f"p{j}": str(i * 10 + j) for j in range(5)}
        assert {k: v for k, v in got["tags"].items() if k.startswith("t")} == {
            "t0": f"a{i}",
            "t1": f"b{i}",
            "t2": f"c{i}",
        }
        assert {k: (m["value"], m["step"]) for k, m in got["metrics"].items()} == {
            "m0": (i, i),
            "m1": (i + 0.5, i),
            "m2": (-i, i),
        }


def test_runs_ended_without_waiting_are_all_durable_after_flush(serve: str) -> None:
    """A sweep that does not wait at each run's end (wait_on_end=False): `runstream.flush()` returns once
    every run's events are durable, and reads in this process then see them all, FINISHED, with no token."""
    ids = []
    for i in range(300):
        with runstream.start_run(experiment="unwaited", run_name=f"u{i}", tracking_uri=serve, wait_on_end=False) as run:
            run.log_params({"i": i})
            run.log_metrics({"m": i}, step=i)
        ids.append(run.run_id)
    runstream.flush(timeout=60)
    runs, _ = runstream.Client(serve).search_runs([run.experiment_id], max_results=1000)
    got = {r["run_id"]: r for r in runs}
    assert set(got) == set(ids)
    for i, run_id in enumerate(ids):
        r = got[run_id]
        assert (r["run_name"], r["status"], r["params"], r["metrics"]["m"]["value"]) == (
            f"u{i}",
            "FINISHED",
            {"i": str(i)},
            i,
        )


def test_a_send_of_more_events_than_one_request_takes_is_split(serve: str) -> None:
    """A sweep's sender can hold more events than the gateway takes in one request (a few thousand
    small runs ended without waiting): they go out as several requests, none refused."""
    with runstream.start_run(experiment="split", tracking_uri=serve) as run:
        pass
    events = [event("TagsSet", run_id=run.run_id, tags={"t": str(i)}) for i in range(MAX_EVENTS + 500)]
    transport = HttpTransport(serve)
    positions = transport.send([(partition_key(*e), encode(*e)) for e in events])
    transport.close()
    client = runstream.Client(serve)
    assert client.get_run(run.run_id, after=format_token(positions))["tags"]["t"] == str(MAX_EVENTS + 499)


def test_what_a_process_leaves_unsent_goes_out_at_exit(serve: str) -> None:
    """A script that ends runs without waiting, and one run it never ends, then exits: nothing is lost."""
    script = f"""
import runstream
uri = {serve!r}
for i in range(50):
    with runstream.start_run(experiment="exit-flush", run_name=f"e{{i}}", tracking_uri=uri, wait_on_end=False) as run:
        run.log_metric("m", i)
never_ended = runstream.start_run(experiment="exit-flush", run_name="open", tracking_uri=uri, flush_interval=3600)
never_ended.log_params({{"left": "open"}})
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    client = runstream.Client(serve)
    experiment_id = experiment_id_for_name("exit-flush")
    deadline = time.monotonic() + 60  # another process wrote them: no token here to wait on
    while True:
        runs = client.search_runs([experiment_id], max_results=100)[0]
        if (len(runs) == 51 and all(r["metrics"] or r["params"] for r in runs)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    finished = sorted(r["run_name"] for r in runs if r["status"] == "FINISHED" and r["metrics"])
    assert finished == sorted(f"e{i}" for i in range(50))
    assert [r["params"] for r in runs if r["run_name"] == "open"] == [{"left": "open"}]


def test_history_and_runs_as_data_frames(serve: str) -> None:
    values = np.array([0.5, np.nan, -np.inf, 2.0])
    for i in range(3):
        with runstream.start_run(
            experiment="frames", run_name=f"f{i}", tags={"seed": str(i)}, tracking_uri=serve
        ) as run:
            run.log_params({"lr": 0.1 * (i + 1)})
            run.log_metric_arrays("loss", values + i, np.arange(4))
    client = runstream.Client(serve)
    history = client.get_metric_history(run.run_id, "loss")
    arrow = history.to_arrow()
    assert arrow.column_names == ["step", "value", "timestamp", "rank"]
    assert arrow.column("value").to_numpy().tobytes() == (values + 2).tobytes()
    assert history.to_pandas()["step"].tolist() == [0, 1, 2, 3]
    assert history.to_polars()["value"].to_numpy().tobytes() == (values + 2).tobytes()

    frame = client.search_runs_frame([run.experiment_id], order_by=["params.lr DESC"])
    assert list(frame.columns[:6]) == ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    assert frame["params.lr"].tolist() == ["0.30000000000000004", "0.2", "0.1"]
    assert frame["tags.mlflow.runName"].tolist() == ["f2", "f1", "f0"]
    assert frame["metrics.loss"].tolist() == [4.0, 3.0, 2.0]
    assert str(frame["start_time"].dt.tz) == "UTC" and frame["end_time"].notna().all()
    assert len(client.search_runs_frame([run.experiment_id], max_results=2)) == 2
    assert client.search_runs_frame([run.experiment_id], "params.lr = 'none'").empty


def test_runs_page_through_an_experiment(serve: str) -> None:
    ids = set()
    for i in range(7):
        with runstream.start_run(experiment="paged", run_name=f"r{i}", tracking_uri=serve) as run:
            ids.add(run.run_id)
        token = run.end()
    client = runstream.Client(serve)
    experiment = client.get_experiment_by_name("paged", after=token)
    assert experiment is not None
    seen, page_token = [], None
    while True:
        page = httpx.get(
            f"{serve}/api/v1/runs",
            params={"experiment_id": experiment["experiment_id"], "max_results": 3, "page_token": page_token or ""},
        ).json()
        seen += [r["run_id"] for r in page["runs"]]
        page_token = page["next_page_token"]
        if not page_token:
            break
    assert len(seen) == 7 and set(seen) == ids


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("get", "/api/v1/runs/0123456789abcdef0123456789abcdef", {}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("get", "/api/v1/experiments/nope", {}, 404, "RESOURCE_DOES_NOT_EXIST"),
        (
            "get",
            "/api/v1/runs",
            {"params": {"experiment_id": "0", "page_token": "%%%"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("get", "/api/v1/runs", {"params": {"experiment_id": "0", "max_results": 0}}, 400, "INVALID_PARAMETER_VALUE"),
        ("get", "/api/v1/runs", {}, 400, "INVALID_PARAMETER_VALUE"),
        ("get", "/api/v1/experiments", {"params": {"after": "x:y"}}, 400, "INVALID_PARAMETER_VALUE"),
        ("get", "/api/v1/experiments", {"params": {"view": "sideways"}}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "get",
            "/api/v1/runs/0123456789abcdef0123456789abcdef/metric-history",
            {"params": {"key": "k", "page_token": "WzEsMl0="}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("post", "/api/v1/events", {"content": b"\x00\x00\x00\x09abc"}, 400, "INVALID_PARAMETER_VALUE"),
        ("post", "/api/v1/events", {"content": b"\x00\x00\x00\x03abc"}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_bad_requests_get_clear_4xx_errors(serve: str, method, path, kwargs, status, code) -> None:
    response = httpx.request(method, serve + path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert response.json()["message"]


def test_oversized_bodies_are_refused_with_413(serve: str) -> None:
    chunks = (b"\x00" * (1024 * 1024) for _ in range(70))  # streamed: no content-length to trust
    response = httpx.post(f"{serve}/api/v1/events", content=chunks)
    assert response.status_code == 413
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_openapi_documents_the_routes(serve: str) -> None:
    paths = httpx.get(f"{serve}/openapi.json").json()["paths"]
    assert {"/api/v1/events", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/metric-history"} <= set(paths)


def test_chart_reads_through_the_client(serve: str) -> None:
    runs = []
    for seed in range(3):
        with runstream.start_run(experiment="charts", tracking_uri=serve) as run:
            run.log_params({"lr": "0.1", "seed": seed})
            run.log_metric_arrays("loss", np.arange(10_000.0) + seed, np.arange(10_000))
        runs.append(run)
    with runstream.start_run(experiment="charts", parent_run_id=runs[0].run_id, tracking_uri=serve) as child:
        pass
    token = child.end()
    client = runstream.Client(serve)
    client.get_run(child.run_id, after=token)

    sampled = client.get_metric_history(runs[0].run_id, "loss", max_points=100)
    assert len(sampled["bucket"]) == 100 and sum(sampled["count"]) == 10_000
    assert sampled["first"][0] == 0.0 and sampled["last"][-1] == 9999.0
    compared = client.compare_runs([r.run_id for r in runs], ["loss"], max_points=10)
    assert [s["max"][-1] for s in compared["series"]] == [9999.0 + i for i in range(3)]
    summaries = client.get_run_summaries([runs[1].run_id])
    assert summaries == [
        {"run_id": runs[1].run_id, "key": "loss", "last": 10_000.0, "last_step": 9999,
         "last_timestamp": summaries[0]["last_timestamp"], "min": 1.0, "max": 10_000.0, "count": 10_000}
    ]  # fmt: skip
    [group] = client.aggregate_runs([r.run_id for r in runs], "loss", ["params.lr"], max_points=1)
    assert group["runs"] == [3] and group["mean"] == [4999.5 + 1.0]
    found, _ = client.search_runs(
        [runs[0].experiment_id], "metrics.loss >= 10000 AND params.lr = '0.1'", ["metrics.loss DESC"]
    )
    assert [r["run_id"] for r in found] == [runs[2].run_id, runs[1].run_id]
    assert [e["name"] for e in client.search_experiments("name LIKE 'chart%'")] == ["charts"]
    assert client.get_child_runs(runs[0].run_id) == [child.run_id]
    assert client.get_parent_runs(child.run_id) == [runs[0].run_id]


def test_arrow_answers_equal_the_json_ones(serve: str) -> None:
    values = np.arange(1000.0)
    values[[10, 500]] = [np.nan, np.inf]
    with runstream.start_run(experiment="arrow", tracking_uri=serve) as run:
        run.log_metric_arrays("loss", values, np.arange(1000))
    token = run.end()
    client = runstream.Client(serve)
    series = client.compare_runs([run.run_id], ["loss"], max_points=7, after=token)
    body = {"run_ids": [run.run_id], "keys": ["loss"], "max_points": 7}
    as_json = httpx.post(f"{serve}/api/v1/series", json=body).json()
    assert {k: v for k, v in series.items() if k != "series"} == {k: v for k, v in as_json.items() if k != "series"}
    [arrow], [json] = series["series"], as_json["series"]
    assert arrow.keys() == json.keys()
    for name, column in json.items():
        if isinstance(column, list):
            assert np.array_equal(arrow[name], np.array(column, float), equal_nan=True), name
    assert arrow["max"][3] == np.inf and np.isfinite(arrow["mean"][0])  # step 500: inf; step 10: NaN skipped
    history = client.get_metric_history(run.run_id, "loss")
    page = httpx.get(f"{serve}/api/v1/runs/{run.run_id}/metric-history", params={"key": "loss"}).json()
    assert np.array_equal(history.values, np.array(page["values"], float), equal_nan=True)
    assert history.steps.tolist() == page["steps"] and history.ranks.tolist() == page["ranks"]


def metric_samples(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics parsed: (sample name, labels) → value."""
    text = httpx.get(f"{base_url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_readiness_and_metrics(serve: str) -> None:
    assert httpx.get(f"{serve}/health").json()["status"] == "ok"
    ready = httpx.get(f"{serve}/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"projector": "ok", "webhooks": "ok", "event_log": "ok", "clickhouse": "ok"}
    before = metric_samples(serve)
    with runstream.start_run(experiment="observed", tracking_uri=serve) as run:
        run.log_metric_arrays("loss", np.arange(500.0), np.arange(500))
    runstream.Client(serve).get_run(run.run_id, after=run.end())
    after = metric_samples(serve)

    def grew(name: str, labels: frozenset[tuple[str, str]] = frozenset()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert grew("runstream_gateway_events_total") >= 3  # created, metrics, ended
    assert grew("runstream_projector_points_total") == 500
    assert grew("runstream_projector_write_seconds_count") >= 1
    events_route = frozenset({("handler", "/api/v1/events"), ("method", "POST")})
    assert grew("runstream_http_request_duration_seconds_count", events_route) >= 1
    assert ("runstream_projector_lag_messages", frozenset({("partition", "0")})) in after
    # The embedded engine's share of serve's memory: it holds the parts' primary keys, a read of
    # their marks caches them, and its allocator holds at least the pages of what it hands out.
    engine = {
        dict(labels)["kind"]: value for (name, labels), value in after.items() if name.startswith("runstream_engine")
    }
    assert engine.keys() >= {
        "tracked",
        "mark_cache",
        "primary_keys",
        "allocator_allocated",
        "allocator_active",
        "allocator_resident",
    }
    assert engine["primary_keys"] > 0 and engine["mark_cache"] > 0 and engine["tracked"] > 0
    assert engine["allocator_resident"] >= engine["allocator_active"] >= engine["allocator_allocated"] > 0
