"""Garbage collection by policy, on a real ClickHouse server and a real S3 server."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from runstream.eventlog.local import LocalLog
from runstream.server.cli import main
from tests.artifacts.conftest import keys, uploads_in_progress
from tests.conftest import new_store
from tests.services.s3_server import S3Server
from tests.store.test_projection import message, project

LIVE, DELETED, RESTORED = "1a" * 16, "2b" * 16, "3c" * 16
MODEL = "m-" + "4d" * 16  # a deleted logged model (MLflow 3)


@pytest.mark.parametrize("policy", ["keep", "delete"])
def test_deleted_runs_lose_or_keep_their_artifacts_by_policy(
    policy: str, s3: S3Server, request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    store = new_store(request, "server")
    log = LocalLog(tmp_path / "events.sqlite3")
    created: dict[str, Any] = {"experiment_id": "0", "run_name": None, "user_id": "u", "start_time": 1, "tags": {},
               "parent_run_id": None, "artifact_uri": None}  # fmt: skip
    log.append([message("RunCreated", run_id=run, **created) for run in (LIVE, DELETED, RESTORED)])
    log.append([message("RunDeleted", run_id=DELETED), message("RunDeleted", run_id=RESTORED)])
    log.append([message("RunRestored", run_id=RESTORED)])
    model = {"experiment_id": "0", "name": "m", "model_type": None, "source_run_id": None, "artifact_uri": "x"}
    log.append([message("LoggedModelCreated", model_id=MODEL, **model), message("LoggedModelDeleted", model_id=MODEL)])
    project(log, store)
    log.close()

    bucket = s3.new_bucket()
    client = s3.client()
    for run in (LIVE, DELETED, RESTORED):
        for name in ("a.txt", "d/b.txt"):
            client.put_object(Bucket=bucket, Key=f"root/{run}/artifacts/{name}", Body=b"x")
    client.put_object(Bucket=bucket, Key=f"root/models/{MODEL}/artifacts/MLmodel", Body=b"x")
    client.create_multipart_upload(Bucket=bucket, Key=f"root/{LIVE}/artifacts/abandoned.bin")

    args = [
        "gc",
        "--clickhouse-url",
        store.url.dsn + "/" + store.url.database,
        "--artifact-root",
        f"s3://{bucket}/root",
    ]
    result = CliRunner().invoke(main, [*args, "--artifact-policy", policy, "--grace", "0", "--stale-uploads", "0"])
    assert result.exit_code == 0, result.output

    left = {k.split("/")[1] for k in keys(s3, bucket)}
    assert left == ({LIVE, RESTORED} if policy == "delete" else {LIVE, DELETED, RESTORED, "models"})
    assert uploads_in_progress(s3, bucket) == []
    removed = 3 if policy == "delete" else 0
    assert f"objects removed: {removed}, uploads aborted: 1" in result.output

    # Within the grace period nothing goes.
    client.put_object(Bucket=bucket, Key=f"root/{DELETED}/artifacts/late.txt", Body=b"x")
    CliRunner().invoke(main, [*args, "--artifact-policy", policy, "--grace", "3600"])
    assert f"root/{DELETED}/artifacts/late.txt" in keys(s3, bucket)
