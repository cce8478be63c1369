"""Garbage collection of artifacts, by policy: the artifacts of runs (and of MLflow 3 logged models)
deleted longer ago than a grace period are removed (`delete`) or kept (`keep`); multipart uploads
abandoned by crashed clients are aborted either way (S3 keeps, and bills, their parts until then)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from clickhouse_connect.driver.client import Client

from runstream.artifacts.store import ArtifactStore
from runstream.schemas.artifact_paths import model_prefix, run_prefix

Policy = Literal["keep", "delete"]
log = logging.getLogger(__name__)

# A run is deleted when its latest delete/restore event is a delete; restoring within the grace
# period keeps its artifacts.
_DELETED_RUNS = """
SELECT run_id FROM run_events
GROUP BY run_id
HAVING argMaxIf(kind, (event_time, seq), kind IN ('deleted', 'restored')) = 'deleted'
   AND maxIf(event_time, kind = 'deleted') <= {cutoff:Int64}
ORDER BY run_id
"""


# A logged model, once deleted, stays deleted (MLflow has no restore for them).
_DELETED_MODELS = """
SELECT model_id FROM logged_model_events
GROUP BY model_id
HAVING maxIf(event_time, kind = 'deleted') <= {cutoff:Int64} AND countIf(kind = 'deleted') > 0
ORDER BY model_id
"""


@dataclass(frozen=True)
class Collected:
    runs: int
    objects: int
    aborted_uploads: int
    models: int


def _deleted(client: Client, sql: str, grace_s: float) -> list[str]:
    cutoff = int((time.time() - grace_s) * 1000)
    return [row[0] for row in client.query(sql, parameters={"cutoff": cutoff}).result_rows]


def deleted_runs(client: Client, grace_s: float) -> list[str]:
    return _deleted(client, _DELETED_RUNS, grace_s)


def collect(client: Client, store: ArtifactStore, policy: Policy, grace_s: float, stale_upload_s: float) -> Collected:
    aborted = store.abort_stale_uploads(stale_upload_s)
    runs = deleted_runs(client, grace_s) if policy == "delete" else []
    models = _deleted(client, _DELETED_MODELS, grace_s) if policy == "delete" else []
    objects = 0
    for kind, prefix in [*(("run", run_prefix(r)) for r in runs), *(("model", model_prefix(m)) for m in models)]:
        removed = store.delete_prefix(prefix)
        log.info("deleted %s %s: removed %d artifact objects", kind, prefix, removed)
        objects += removed
    return Collected(runs=len(runs), objects=objects, aborted_uploads=aborted, models=len(models))
