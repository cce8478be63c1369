"""Garbage collection of artifacts, by policy: the artifacts of runs (and of MLflow 3 logged models)
deleted longer ago than a grace period are removed (`delete`) or kept (`keep`); multipart uploads
abandoned by crashed clients are aborted either way (S3 keeps, and bills, their parts until then)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from clickhouse_connect.driver.client import Client

from runstream.artifacts.store import ArtifactStore
from runstream.schemas.artifact_paths import model_prefix, run_prefix
from runstream.store import artifacts as listings

Policy = Literal["keep", "delete"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Collected:
    runs: int
    objects: int
    aborted_uploads: int
    models: int


def collect(client: Client, store: ArtifactStore, policy: Policy, grace_s: float, stale_upload_s: float) -> Collected:
    aborted = store.abort_stale_uploads(stale_upload_s)
    runs = listings.deleted_runs(client, grace_s) if policy == "delete" else []
    models = listings.deleted_models(client, grace_s) if policy == "delete" else []
    objects = 0
    for kind, prefix in [*(("run", run_prefix(r)) for r in runs), *(("model", model_prefix(m)) for m in models)]:
        removed = store.delete_prefix(prefix)
        log.info("deleted %s %s: removed %d artifact objects", kind, prefix, removed)
        objects += removed
    return Collected(runs=len(runs), objects=objects, aborted_uploads=aborted, models=len(models))
