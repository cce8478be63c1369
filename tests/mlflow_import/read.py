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
        }
    model = client.get_registered_model("import-model")
    versions = client.search_model_versions("name='import-model'")
    result["models"] = {
        "name": model.name,
        "description": model.description,
        "tags": model.tags,
        "aliases": {k: str(v) for k, v in model.aliases.items()},  # a store gives ints, REST strings
        "versions": sorted([[int(v.version), v.source, v.run_id, v.current_stage, v.tags, v.status] for v in versions]),
    }
    out.write_text(json.dumps(result, sort_keys=True, indent=1))


if __name__ == "__main__":
    for uri, out in zip(sys.argv[1::2], sys.argv[2::2], strict=True):
        main(uri, Path(out))
