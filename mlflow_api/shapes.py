"""Rows of api.queries → MLflow's protobuf JSON (service.proto: Experiment, Run, Metric...)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from runstream.base.errors import invalid
from runstream.base.responses import json_response
from runstream.schemas.wire import json_float

# MLflow's view types, by name (JSON) or number (what a query string may carry).
VIEW_TYPES = {
    "ACTIVE_ONLY": "active",
    "DELETED_ONLY": "deleted",
    "ALL": "all",
    "1": "active",
    "2": "deleted",
    "3": "all",
}


def default_artifact_location(experiment_id: str) -> str:
    """Where MLflow's server (--serve-artifacts) puts an experiment's artifacts; the mlflow-artifacts
    endpoints resolve these URIs."""
    return f"mlflow-artifacts:/{experiment_id}"


def key_values(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def experiment(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment_id": e["experiment_id"],
        "name": e["name"],
        "artifact_location": e["artifact_location"] or default_artifact_location(e["experiment_id"]),
        "lifecycle_stage": e["lifecycle_stage"],
        "last_update_time": e["last_update_time"],
        "creation_time": e["creation_time"],
        "tags": key_values(e["tags"]),
    }


def run_artifact_uri(experiment_id: str, run_id: str, recorded: str | None) -> str:
    """The run's artifact URI; runs the SDK started have none recorded: where MLflow's server would put
    them."""
    return recorded or f"{default_artifact_location(experiment_id)}/{run_id}/artifacts"


def run_id_param(run_id: str | None, run_uuid: str | None) -> str:
    """MLflow's requests name a run by `run_id`, or by the older `run_uuid`."""
    found = run_id or run_uuid
    if not found:
        raise invalid("Missing value for required parameter 'run_id'")
    return found


def run_info(r: dict[str, Any]) -> dict[str, Any]:
    info = {
        "run_id": r["run_id"],
        "run_uuid": r["run_id"],
        "run_name": r["run_name"],
        "experiment_id": r["experiment_id"],
        "user_id": r["user_id"],
        "status": r["status"],
        "start_time": r["start_time"],
        "artifact_uri": run_artifact_uri(r["experiment_id"], r["run_id"], r["artifact_uri"]),
        "lifecycle_stage": r["lifecycle_stage"],
    }
    if r["end_time"] is not None:  # unset fields are absent in protobuf JSON
        info["end_time"] = r["end_time"]
    return info


def metric(key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": json_float(value), "timestamp": timestamp, "step": step}


def run(
    r: dict[str, Any],
    dataset_inputs: list[dict[str, Any]],
    model_inputs: list[dict[str, Any]] | None = None,
    model_outputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    metrics = [{"key": k, **m} for k, m in r["metrics"].items()]  # values are already JSON floats
    inputs: dict[str, Any] = {"dataset_inputs": dataset_inputs}
    if model_inputs:  # MLflow 3's; absent when empty, as protobuf JSON leaves it
        inputs["model_inputs"] = model_inputs
    shaped = {
        "info": run_info(r),
        "data": {"metrics": metrics, "params": key_values(r["params"]), "tags": key_values(r["tags"])},
        "inputs": inputs,
    }
    if model_outputs:
        shaped["outputs"] = {"model_outputs": model_outputs}
    return shaped


def mlflow_json(body: dict[str, Any]) -> Response:
    """Protobuf JSON leaves unset fields out."""
    return json_response({k: v for k, v in body.items() if v is not None})


def ok() -> Response:
    """The empty answer of a write that returns nothing."""
    return mlflow_json({})
