"""Everything an MLflow client reads of the store fill.py made, as JSON, for comparing servers:
python read.py TRACKING_URI OUT.json [TRACKING_URI OUT.json ...] (one process: mlflow imports once).
Experiments are keyed by name (ids are each server's own)."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository


def _files(client: MlflowClient, run_id: str, path: str | None = None) -> list[Any]:
    out = []
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            out += _files(client, run_id, entry.path)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(client.download_artifacts(run_id, entry.path, tmp)).read_bytes()
            out.append([entry.path, entry.file_size, hashlib.sha256(data).hexdigest()])
    return out


def _model_files(location: str, uri: str, path: str | None = None) -> list[Any]:
    """A logged model's files (path, sha256), wherever its artifact location points."""
    repo, out = get_artifact_repository(location, tracking_uri=uri), []
    for entry in repo.list_artifacts(path):
        if entry.is_dir:
            out += _model_files(location, uri, entry.path)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                data = Path(repo.download_artifacts(entry.path, tmp)).read_bytes()
            out.append([entry.path, hashlib.sha256(data).hexdigest()])
    return sorted(out)


def main(uri: str, out: Path) -> None:
    client = MlflowClient(uri, registry_uri=uri)
    names = {}
    result: dict[str, Any] = {"experiments": {}, "runs": {}, "models": {}}
    for exp in client.search_experiments(view_type=ViewType.ALL):
        if not exp.name.startswith("import-"):
            continue
        names[exp.experiment_id] = exp.name
        result["experiments"][exp.name] = {"stage": exp.lifecycle_stage, "tags": exp.tags}
    for run in client.search_runs(list(names), run_view_type=ViewType.ALL, max_results=1000):
        info = run.info
        result["runs"][info.run_id] = {
            "experiment": names[info.experiment_id],
            "name": info.run_name,
            "status": info.status,
            "stage": info.lifecycle_stage,
            "start": info.start_time,
            "end": info.end_time,
            "user": info.user_id,
            "params": run.data.params,
            "tags": run.data.tags,
            "metrics": run.data.metrics,
            "history": {
                k: [[m.step, m.value, m.timestamp] for m in client.get_metric_history(info.run_id, k)]
                for k in sorted(run.data.metrics)
            },
            "inputs": sorted([d.dataset.name, d.dataset.digest, d.dataset.source] for d in run.inputs.dataset_inputs),
            "artifacts": sorted(_files(client, info.run_id)),
            "outputs": sorted([o.model_id, o.step] for o in (run.outputs.model_outputs if run.outputs else [])),
        }
    result["logged_models"] = {
        m.name: {
            "id": m.model_id,
            "experiment": names[m.experiment_id],
            "status": str(m.status),
            "type": m.model_type or None,  # unset reads as "" over REST, None from a store
            "run": m.source_run_id or None,
            "params": m.params,
            "tags": m.tags,
            "metrics": sorted([x.key, x.value, x.step, x.timestamp, x.run_id, x.dataset_name] for x in m.metrics or []),
            "files": _model_files(m.artifact_location, uri),
        }
        for m in client.search_logged_models(list(names))
    }
    model = client.get_registered_model("import-model")
    versions = client.search_model_versions("name='import-model'")
    result["models"] = {
        "name": model.name,
        "description": model.description,
        "tags": model.tags,
        "aliases": {k: str(v) for k, v in model.aliases.items()},  # a store gives ints, REST strings
        "versions": sorted(
            [[int(v.version), v.source, v.run_id, v.model_id, v.current_stage, v.tags, v.status] for v in versions]
        ),
    }
    out.write_text(json.dumps(result, sort_keys=True, indent=1))


if __name__ == "__main__":
    for uri, out in zip(sys.argv[1::2], sys.argv[2::2], strict=True):
        main(uri, Path(out))
