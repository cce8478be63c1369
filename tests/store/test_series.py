"""Downsampling, comparison, aggregation and summaries against numpy on the same points."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from runstream.api.series_routes import AggregateRequest, SeriesRequest, _aggregate, _series
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.local import LocalLog
from runstream.store import hierarchy, series
from tests.conftest import CLUSTER_BACKENDS, new_store
from tests.store.test_projection import message, metrics, project

START = 1_700_000_000_000


def new_run(log: LocalLog, params: dict[str, str] | None = None, parent: str | None = None, tags=None) -> str:
    run_id = uuid.uuid4().hex
    log.append(
        [
            message(
                "RunCreated",
                run_id=run_id,
                experiment_id="1",
                run_name=None,
                user_id="u",
                start_time=START,
                tags=tags or {},
                parent_run_id=parent,
                artifact_uri=None,
            ),
            message("ParamsLogged", run_id=run_id, params=params or {}),
        ]
    )
    return run_id


def log_points(log: LocalLog, run_id: str, rank: int, values: np.ndarray, steps: np.ndarray, key: str = "loss"):
    log.append([metrics(run_id, rank, [key], np.zeros(len(values)), values, steps, START + steps * 10)])


@pytest.fixture(params=CLUSTER_BACKENDS)
def store(request: pytest.FixtureRequest) -> ClickHouse:
    # History, series, compare and aggregate answers on the 2-shard cluster too.
    return new_store(request, request.param)


@pytest.fixture
def log(tmp_path):
    log = LocalLog(tmp_path / "events.sqlite3")
    yield log
    log.close()


def test_downsampling_keeps_first_last_and_true_envelope(log: LocalLog, store: ClickHouse) -> None:
    rng = np.random.default_rng(1)
    run = new_run(log)
    n = 10_007
    steps = np.arange(n)
    values = {rank: rng.normal(size=n) for rank in (0, 1)}
    values[1][5000] = 1e9  # a spike that must survive
    values[0][17] = np.nan
    for rank in (0, 1):
        log_points(log, run, rank, values[rank], steps)
    project(log, store)

    # The whole range reads the 64-step rollup; an explicit range reads the points: same answers.
    for buckets, x_range, width in ((10, {}, 1024), (100, {"x_min": 0, "x_max": n - 1}, 101)):
        request = SeriesRequest(run_ids=[run], keys=["loss"], max_points=buckets, **x_range)
        result = _series(store.client, request)
        [merged] = result["series"]
        assert (result["x_min"], result["bucket_width"]) == (0, width) and len(merged["bucket"]) <= buckets
        all_x = np.concatenate([steps, steps])
        all_v = np.concatenate([values[0], values[1]])
        bucket = all_x // width
        assert merged["bucket"].tolist() == sorted(set(bucket.tolist()))
        for i, b in enumerate(merged["bucket"]):
            inside, xs = all_v[bucket == b], all_x[bucket == b]
            assert merged["count"][i] == len(inside)
            assert merged["min"][i] == np.nanmin(inside) and merged["max"][i] == np.nanmax(inside)
            assert merged["x_of_min"][i] == xs[np.nanargmin(inside)]
            assert merged["mean"][i] == pytest.approx(np.nanmean(inside))
            assert (merged["x_first"][i], merged["x_last"][i]) == (xs.min(), xs.max())
        assert merged["max"].max() == 1e9 and merged["x_of_max"][int(np.argmax(merged["max"]))] == 5000
        assert merged["x_first"][0] == 0 and merged["x_last"][-1] == n - 1  # first and last points kept
        # both ranks have a point at the first and the last step: either one is the first/last point
        assert merged["first"][0] in (values[0][0], values[1][0])
        assert merged["last"][-1] in (values[0][-1], values[1][-1])

    per_rank = _series(store.client, SeriesRequest(run_ids=[run], keys=["loss"], max_points=100, per_rank=True))[
        "series"
    ]
    assert [s["rank"] for s in per_rank] == [0, 1]
    assert per_rank[1]["max"].max() == 1e9 and per_rank[0]["max"].max() < 10
    assert sum(s["count"].sum() for s in per_rank) == 2 * n

    only = _series(store.client, SeriesRequest(run_ids=[run], keys=["loss"], rank=1, x_min=100, x_max=199))
    [one] = only["series"]
    assert one["count"].sum() == 100 and one["x_first"][0] == 100 and one["x_last"][-1] == 199


def test_time_axes_and_a_common_grid_for_many_runs(log: LocalLog, store: ClickHouse) -> None:
    runs = [new_run(log) for _ in range(5)]
    for i, run in enumerate(runs):
        log_points(log, run, 0, np.arange(1000.0) * i, np.arange(1000) + i * 100)
    project(log, store)
    result = _series(store.client, SeriesRequest(run_ids=runs, keys=["loss"], max_points=50))
    assert len(result["series"]) == 5 and result["x_min"] == 0 and result["x_max"] == 1399
    for s in result["series"]:
        assert (s["x_first"] // result["bucket_width"] == s["bucket"]).all()  # all on one grid
    relative = _series(store.client, SeriesRequest(run_ids=runs[:1], keys=["loss"], x_axis="relative", max_points=10))
    assert relative["x_min"] == 0 and relative["x_max"] == 9990  # timestamps are START + 10 * step
    wall = _series(store.client, SeriesRequest(run_ids=runs[:1], keys=["loss"], x_axis="time"))
    assert wall["x_min"] == START


def test_aggregate_across_seeds_equals_numpy(log: LocalLog, store: ClickHouse) -> None:
    rng = np.random.default_rng(2)
    runs, points = [], {}
    for lr in ("0.1", "0.01"):
        for seed in range(4):
            run = new_run(log, {"lr": lr, "seed": str(seed)})
            points[run] = rng.normal(float(lr) * 10, 1.0, size=1024)
            log_points(log, run, 0, points[run], np.arange(1024))
            runs.append(run)
    project(log, store)
    for request in (  # wide buckets read the rollup, narrow ones the points
        AggregateRequest(run_ids=runs, key="loss", group_by=["params.lr"], max_points=2),
        AggregateRequest(run_ids=runs, key="loss", group_by=["params.lr"], max_points=32, x_min=0),
    ):
        result = _aggregate(store.client, request)
        assert result["bucket_width"] == (512 if request.max_points == 2 else 32)
        check_aggregate(result, points)


def check_aggregate(result, points) -> None:
    width = result["bucket_width"]
    assert [g["group"] for g in result["groups"]] == [{"params.lr": "0.1"}, {"params.lr": "0.01"}]
    for group in result["groups"]:
        members = np.array([points[r] for r in group["run_ids"]])  # runs x steps
        per_run = members.reshape(len(members), -1, width).mean(axis=2)  # each run's mean per bucket
        np.testing.assert_allclose(group["mean"], per_run.mean(axis=0))
        np.testing.assert_allclose(group["std"], per_run.std(axis=0, ddof=1))
        np.testing.assert_allclose(group["median"], np.median(per_run, axis=0))
        np.testing.assert_allclose(group["min"], per_run.min(axis=0))
        np.testing.assert_allclose(group["max"], per_run.max(axis=0))
        assert (group["runs"] == 4).all()


def test_summaries_and_hierarchy(log: LocalLog, store: ClickHouse) -> None:
    parent = new_run(log)
    child = new_run(log, parent=parent)
    grandchild = new_run(log, tags={"mlflow.parentRunId": child})
    log_points(log, child, 0, np.array([3.0, np.nan, -1.0, 2.0]), np.array([0, 1, 2, 3]))
    project(log, store)
    [row] = series.summaries(store.client, [child], None)
    assert (row["last"], row["last_step"], row["min"], row["max"], row["count"]) == (2.0, 3, -1.0, 3.0, 4)
    assert hierarchy.children(store.client, parent) == [child]
    assert hierarchy.children(store.client, child) == [grandchild]
    assert hierarchy.parents(store.client, grandchild) == [child, parent]
    assert hierarchy.parents(store.client, parent) == []
