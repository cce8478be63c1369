"""The all-in-one app (gateway + projector + read API) in this process on the embedded backend,
seeded with two experiments and a run in each, for tests that attack its HTTP surface."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI

from runstream.artifacts.stores import store_for
from runstream.base.auth import Users
from runstream.eventlog.local import LocalLog
from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, event, metric_batch_fields, partition_key
from runstream.server.app import build_app
from runstream.server.roles import embedded_projector
from runstream.store.applied import applied_positions
from tests.conftest import new_store

GROUP = "hostile"
RUNS = {"1": "0123456789abcdef0123456789abcdef", "2": "fedcba9876543210fedcba9876543210"}  # experiment → run


def message(name: str, /, **fields: object) -> tuple[str, bytes]:
    e = event(name, **fields)
    return partition_key(*e), encode(*e)


def _seed(log: LocalLog) -> None:
    for experiment_id, run_id in RUNS.items():
        points = MetricColumns(
            run_id,
            0,
            "node",
            ["loss"],
            np.zeros(100, np.uint16),
            np.linspace(0, 1, 100),
            np.arange(100),
            np.arange(100),
        )
        log.append(
            [
                message(
                    "ExperimentCreated",
                    experiment_id=experiment_id,
                    name=f"exp{experiment_id}",
                    artifact_location=None,
                    tags={"t": "v"},
                ),
                message(
                    "RunCreated",
                    run_id=run_id,
                    experiment_id=experiment_id,
                    run_name="r",
                    user_id="u",
                    start_time=1,
                    tags={"team": "ds"},
                    parent_run_id=None,
                    artifact_uri=None,
                ),
                message("ParamsLogged", run_id=run_id, params={"lr": "0.1"}),
                message("MetricBatch", **metric_batch_fields(points)),
            ]
        )


@contextmanager
def seeded_app(request: pytest.FixtureRequest, directory: Path, users: Users | None = None) -> Iterator[FastAPI]:
    log = LocalLog(directory / "events.sqlite3")
    store = new_store(request, "embedded")
    projector, applied = embedded_projector(log, store, GROUP, max_wait_s=0.05)
    worker = threading.Thread(target=projector.run)
    worker.start()
    try:
        _seed(log)
        while applied_positions(store.client, GROUP).get(0, 0) < log.end_offset():
            threading.Event().wait(0.02)
        artifacts = store_for(str(directory / "artifacts"))
        yield build_app(
            "serve", log=log, store=store, consumer_group=GROUP, applied=applied, users=users, artifacts=artifacts
        )
    finally:
        projector.stop()
        worker.join()
        log.close()
