"""Version numbers when another writer process registers versions of the same model: its claim of a
number, first in the log, wins; this process's writer sees that and takes the next number."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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
from runstream.store import registry as rq

GROUP = "registry"
API = "/api/2.0/mlflow"


@pytest.fixture
def served(tmp_path: Path, store: ClickHouse) -> Iterator[tuple[TestClient, LocalLog]]:
    log = LocalLog(tmp_path / "events.sqlite3")
    projector = Projector(lambda _handlers: log.consumer(GROUP), store, GROUP, max_wait_s=0.05)
    worker = threading.Thread(target=projector.run)
    worker.start()
    try:
        yield TestClient(build_app("serve", log=log, store=store, consumer_group=GROUP)), log
    finally:
        projector.stop()
        worker.join()
        log.close()


def test_a_number_claimed_first_by_another_writer_is_not_taken_twice(
    served: tuple[TestClient, LocalLog], store: ClickHouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, log = served
    assert http.post(f"{API}/registered-models/create", json={"name": "m"}).status_code == 200
    row = rq.model_row(store.client, "m")
    assert row is not None
    # Another gateway's claim of version 1, in the log before ours and not projected yet.
    other = event(
        "ModelVersionCreated",
        registered_model_id=row["registered_model_id"],
        version=1,
        source="s3://other/1",
        run_id=None,
        run_link=None,
        logged_model_id=None,
        description="theirs",
        tags={},
        user="other",
    )
    log.append([(partition_key(*other), encode(*other))])
    real_max_version = rq.max_version
    seen: list[int] = []

    def unseen_at_first(client: Any, model_id: str) -> int:
        """As if the other claim were not projected yet when our writer picks its number."""
        seen.append(real_max_version(client, model_id))
        return 0 if len(seen) == 1 else seen[-1]

    monkeypatch.setattr(rq, "max_version", unseen_at_first)
    body = {"name": "m", "source": "s3://ours", "description": "ours", "tags": [{"key": "k", "value": "v"}]}
    created = http.post(f"{API}/model-versions/create", json=body)
    assert created.status_code == 200, created.text
    ours = created.json()["model_version"]
    assert (ours["version"], ours["source"], ours["description"], ours["tags"]) == (
        "2",
        "s3://ours",
        "ours",
        [{"key": "k", "value": "v"}],
    )
    assert len(seen) == 2  # our claim of 1 lost, so the writer claimed again
    theirs = http.get(f"{API}/model-versions/get", params={"name": "m", "version": "1"}).json()["model_version"]
    assert (theirs["source"], theirs["description"], theirs["tags"]) == ("s3://other/1", "theirs", [])
    history = rq.history(store.client, row["registered_model_id"])
    assert [(e["event"], e.get("version")) for e in history] == [
        ("model_created", None),
        ("version_created", "1"),
        ("version_created", "2"),  # a lost claim is not a creation
    ]
