"""Schemathesis over the OpenAPI schema of the gateway and the read API (the all-in-one app on the
embedded backend, with data in it): whatever a request holds, the answer is never a 5xx."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from api import queries
from ingest.framing import CONTENT_TYPE
from ingest.log.local import LocalLog
from projector.projector import Projector
from runstream.app import build_app
from schemas.codec import encode
from schemas.events import MetricColumns, event, metric_batch_fields, partition_key
from tests.conftest import new_store

GROUP = "fuzz"
# The write endpoint's body is opaque bytes (framed events): sent as generated.
schemathesis.serializer.alias(CONTENT_TYPE, "application/octet-stream")
RUN = "0123456789abcdef0123456789abcdef"


def _message(name: str, /, **fields: object) -> tuple[str, bytes]:
    e = event(name, **fields)
    return partition_key(*e), encode(*e)


def _seed(log: LocalLog) -> None:
    points = MetricColumns(
        RUN, 0, "node", ["loss"], np.zeros(100, np.uint16), np.linspace(0, 1, 100), np.arange(100), np.arange(100)
    )
    log.append(
        [
            _message("ExperimentCreated", experiment_id="1", name="fuzz", artifact_location=None, tags={"t": "v"}),
            _message(
                "RunCreated",
                run_id=RUN,
                experiment_id="1",
                run_name="r",
                user_id="u",
                start_time=1,
                tags={"team": "ds"},
                parent_run_id=None,
                artifact_uri=None,
            ),
            _message("ParamsLogged", run_id=RUN, params={"lr": "0.1"}),
            _message("MetricBatch", **metric_batch_fields(points)),
        ]
    )


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    log = LocalLog(Path(tmp_path_factory.mktemp("fuzz")) / "events.sqlite3")
    store = new_store(request, "embedded")
    projector = Projector(lambda _revoke: log.consumer(GROUP), store, GROUP, max_wait_s=0.05)
    worker = threading.Thread(target=projector.run)
    worker.start()
    _seed(log)
    while queries.applied_positions(store.client, GROUP).get(0, 0) < log.end_offset():
        threading.Event().wait(0.02)
    yield build_app("serve", log=log, store=store, consumer_group=GROUP)
    projector.stop()
    worker.join()
    log.close()


def test_no_request_gets_a_server_error(app: FastAPI) -> None:
    # Each operation's cases drawn by Hypothesis from the schema, called in process (schemathesis'
    # own pytest plugin does not load under this pytest).
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # every operation's schema is usable
        operations.append(result.ok())
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            response = case.call()
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

        no_server_error()
