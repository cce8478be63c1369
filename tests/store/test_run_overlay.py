"""MLflow's get_run answers this process's writes at once, before the projector applies them
(mlflow_api/run_overlay.py), and the answer is the one the projection gives once it has; a write that
does not fold makes the read wait, and a write from elsewhere that is applied is never covered. And
the default experiment the server creates at start: a run started in it at once waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.local import LocalLog
from runstream.projector.projector import Projector
from runstream.schemas.codec import encode
from runstream.schemas.events import event, partition_key
from runstream.server.app import build_app
from runstream.store import queries
from runstream.store.applied import AppliedWatch, caught_up
from tests.conftest import new_store

GROUP = "overlay"
API = "/api/2.0/mlflow"


class Served:
    """The MLflow API over a local log whose projector runs only while `projecting`."""

    def __init__(self, tmp_path: Path, store: ClickHouse) -> None:
        self.store = store
        self.log = LocalLog(tmp_path / "events.sqlite3")
        self.applied = AppliedWatch({})
        app = build_app("serve", log=self.log, store=store, consumer_group=GROUP, applied=self.applied)
        self.http = TestClient(app)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(f"{API}{path}", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def get_run(self, run_id: str) -> dict[str, Any]:
        answer = self.http.get(f"{API}/runs/get", params={"run_id": run_id})
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["run"])

    def projecting(self, until: Callable[[], bool]) -> None:
        """Runs the projector until `until()` holds."""
        projector = Projector(
            lambda _handlers: self.log.consumer(GROUP),
            self.store,
            GROUP,
            max_wait_s=0.05,
            on_applied=self.applied.advance,
            awaited=self.applied.awaited,
        )
        worker = threading.Thread(target=projector.run)
        worker.start()
        try:
            deadline = time.monotonic() + 60
            while not until():
                assert time.monotonic() < deadline, "the projector did not apply the writes"
                time.sleep(0.01)
        finally:
            projector.stop()
            worker.join()

    def apply_all(self) -> None:
        wrote = self.http.app.state.mlflow.marks.latest()  # type: ignore[attr-defined]
        self.projecting(lambda: caught_up(self.applied.current(), wrote))


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    s = Served(tmp_path, new_store(request, "embedded"))  # the API's logic: one engine is enough
    yield s
    s.log.close()


def _run(served: Served) -> str:
    created = served.post("/runs/create", {"experiment_id": "0", "run_name": "r", "start_time": 5})
    return str(created["run"]["info"]["run_id"])


def _metric(key: str, value: float | str, step: int, timestamp: int = 7) -> dict[str, Any]:
    return {"key": key, "value": value, "timestamp": timestamp, "step": step}


def test_a_run_reads_back_at_once_as_the_projection_later_answers_it(served: Served) -> None:
    served.apply_all()  # the default experiment
    run_id = _run(served)
    served.post(
        "/runs/log-batch",
        {
            "run_id": run_id,
            "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
            "metrics": [_metric("loss", 3.0, 2), _metric("loss", 9.0, 1), _metric("acc", "NaN", 0)],
        },
    )
    served.post("/runs/log-batch", {"run_id": run_id, "metrics": [_metric("loss", 1.0, 2, timestamp=8)]})
    served.post("/runs/set-tag", {"run_id": run_id, "key": "b", "value": "3"})
    served.post("/runs/delete-tag", {"run_id": run_id, "key": "a"})
    served.post("/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 11, "run_name": "s"})
    assert queries.run(served.store.client, run_id) is None  # nothing applied yet
    at_once = served.get_run(run_id)
    assert at_once["info"]["status"] == "FINISHED" and at_once["info"]["run_name"] == "s"
    assert at_once["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert {t["key"]: t["value"] for t in at_once["data"]["tags"]} == {"b": "3", "mlflow.runName": "s"}
    latest = {m["key"]: (m["value"], m["step"], m["timestamp"]) for m in at_once["data"]["metrics"]}
    assert latest == {"loss": (1.0, 2, 8), "acc": ("NaN", 0, 7)}

    served.apply_all()
    assert queries.run(served.store.client, run_id) is not None
    projected = served.get_run(run_id)
    order = {k: sorted(v, key=lambda e: e["key"]) for k, v in projected["data"].items()}
    assert {k: sorted(v, key=lambda e: e["key"]) for k, v in at_once["data"].items()} == order
    assert (at_once["info"], at_once["inputs"]) == (projected["info"], projected["inputs"])

    served.post("/runs/delete", {"run_id": run_id})  # over an applied record too
    assert served.get_run(run_id)["info"]["lifecycle_stage"] == "deleted"


def test_a_write_that_does_not_fold_makes_the_read_wait_for_it(served: Served) -> None:
    served.apply_all()
    run_id = _run(served)
    dataset = {"name": "d", "digest": "x1", "source_type": "local", "source": "/d"}
    served.post("/runs/log-inputs", {"run_id": run_id, "datasets": [{"tags": [], "dataset": dataset}]})
    read: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: read.update(served.get_run(run_id)))
    reader.start()
    time.sleep(0.5)
    assert reader.is_alive()  # waiting for the projector
    served.apply_all()
    reader.join()
    assert [d["dataset"]["digest"] for d in read["inputs"]["dataset_inputs"]] == ["x1"]


def test_an_applied_write_from_elsewhere_is_not_covered_by_an_older_one_from_here(served: Served) -> None:
    served.apply_all()
    run_id = _run(served)
    served.post("/runs/set-tag", {"run_id": run_id, "key": "k", "value": "ours"})
    served.apply_all()
    theirs = event("TagsSet", run_id=run_id, tags={"k": "theirs"})  # another gateway's, same run
    served.log.append([(partition_key(*theirs), encode(*theirs))])
    served.projecting(lambda: queries.run(served.store.client, run_id)["tags"]["k"] == "theirs")  # type: ignore[index]
    served.post("/runs/log-batch", {"run_id": run_id, "metrics": [_metric("m", 1.0, 0)]})  # not applied
    read = served.get_run(run_id)
    assert {t["key"]: t["value"] for t in read["data"]["tags"]}["k"] == "theirs"
    assert [m["key"] for m in read["data"]["metrics"]] == ["m"]


def test_a_run_started_before_the_default_experiment_is_applied_waits_for_it(served: Served) -> None:
    """The server creates experiment "0" at start; a client may create its first run there at once."""
    created: dict[str, Any] = {}
    writer = threading.Thread(target=lambda: created.update(served.post("/runs/create", {"experiment_id": "0"})))
    writer.start()
    time.sleep(0.5)
    assert writer.is_alive()  # waiting for the experiment, not refused
    served.apply_all()
    writer.join()
    assert created["run"]["info"]["experiment_id"] == "0"
