"""The raw points' retention policy: once their age passed, points are dropped, and charts answer from
the 64-step rollup and the runs table from the summary, as before; on every backend and the cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstream.api.series_routes import SeriesRequest, _series
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.local import LocalLog
from runstream.eventlog.ranges import LocalRanges
from runstream.projector.migrate import migrate
from runstream.projector.replay import replay
from runstream.projector.retention import keep_raw_points, parse_age, raw_points_kept_s
from runstream.store import series
from tests.conftest import BACKENDS, CLUSTER_BACKENDS, new_store
from tests.store.test_projection import GROUP, project
from tests.store.test_series import log_points, new_run

STEPS = 10_000


@pytest.fixture(params=CLUSTER_BACKENDS)
def store(request: pytest.FixtureRequest) -> ClickHouse:
    return new_store(request, request.param)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LocalLog]:
    log = LocalLog(tmp_path / "events.sqlite3")
    yield log
    log.close()


def _series_of(store: ClickHouse, run: str, buckets: int) -> dict[str, Any]:
    return _series(store.client, SeriesRequest(run_ids=[run], keys=["loss"], max_points=buckets))


def _wait_past(store: ClickHouse, seconds: int) -> None:
    """Until the server's clock is `seconds` past what it says now (a TTL's own clock, whole seconds)."""
    then = store.client.query("SELECT now()").result_rows[0][0]
    deadline = time.monotonic() + 30
    while not store.client.query("SELECT now() > {t:DateTime} + {s:UInt32}", {"t": then, "s": seconds}).result_rows[0][
        0
    ]:
        assert time.monotonic() < deadline, "the server's clock did not move on"
        time.sleep(0.2)


def test_expired_points_answer_from_the_rollup(log: LocalLog, store: ClickHouse) -> None:
    rng = np.random.default_rng(7)
    run = new_run(log)
    values = rng.normal(size=STEPS)
    values[4321] = 1e6  # a spike the rollup keeps
    log_points(log, run, 0, values, np.arange(STEPS))
    project(log, store)
    wide, narrow = _series_of(store, run, 10), _series_of(store, run, 1000)
    assert narrow["bucket_width"] == 10  # read from the points while they are there
    summary = series.summaries(store.client, [run], None)
    assert raw_points_kept_s(store) is None

    _wait_past(store, 1)  # every point written is older than 1 s
    assert keep_raw_points(store, 1) and raw_points_kept_s(store) == 1
    assert not keep_raw_points(store, 1)  # already in force: nothing to do
    assert store.client.query("SELECT count() FROM metrics").result_rows[0][0] == 0

    assert _series_of(store, run, 10)["series"][0]["mean"].tolist() == wide["series"][0]["mean"].tolist()
    after = _series_of(store, run, 1000)
    [merged] = after["series"]
    assert after["bucket_width"] == 64  # the rollup's finest buckets
    assert merged["count"].sum() == STEPS and merged["bucket"].tolist() == list(range(-(-STEPS // 64)))
    assert (merged["first"][0], merged["last"][-1]) == (values[0], values[-1])
    assert merged["max"].max() == 1e6 and merged["x_of_max"][merged["max"].argmax()] == 4321
    assert np.allclose(merged["mean"], [values[i : i + 64].mean() for i in range(0, STEPS, 64)])
    assert series.summaries(store.client, [run], None) == summary

    assert keep_raw_points(store, None) and raw_points_kept_s(store) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_replay_keeps_the_policy(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    store, log = new_store(request, backend), LocalLog(tmp_path / "events.sqlite3")
    run = new_run(log)
    log_points(log, run, 0, np.ones(100), np.arange(100))
    log.close()
    migrate(store)
    keep_raw_points(store, 3600)
    report = replay(LocalRanges(tmp_path / "events.sqlite3"), store, GROUP)
    assert report.swapped and report.counts["metrics"] == (0, 100)
    assert raw_points_kept_s(store) == 3600


@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45)])
def test_ages(text: str, seconds: int) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["0d", "90", "d", "1w", "-1d", "1.5d", ""])
def test_bad_ages_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="an age is"):
        parse_age(text)


def test_forever() -> None:
    assert parse_age("forever") is None
