"""MLflow's entities (as its client returns them) → runstream events, with the entity's own times and
ids derived from what they stand for: importing the same entity twice gives the same events, which
collapse in the projections as a retried write does."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from runstream.schemas.events import MetricColumns, client_identity, experiment_id_for_name, metric_batch_fields

Event = tuple[str, dict[str, Any]]
POINTS_PER_EVENT = 100_000  # a metric batch event stays far below the log's message size limit
_NO_STAGE = ("", "None")


def _id(*parts: str, size: int = 16) -> bytes:
    return hashlib.blake2b("\0".join(("mlflow-import", *parts)).encode(), digest_size=size).digest()


def _event(name: str, event_time: int | None, identity: tuple[str, ...], /, **fields: Any) -> Event:
    header = {"event_id": _id(name, *identity), "event_time": int(event_time or 0), "client": client_identity()}
    return name, {"header": header, **fields}


def registered_model_id(name: str) -> str:
    return _id("registered-model", name).hex()


def experiment_events(experiment: Any, keep_locations: bool) -> Iterator[Event]:
    """An experiment under runstream's id for its name (the SDK's: "Default" stays "0")."""
    experiment_id = experiment_id_for_name(experiment.name)
    yield _event(
        "ExperimentCreated",
        experiment.creation_time,
        (experiment.experiment_id,),
        experiment_id=experiment_id,
        name=experiment.name,
        artifact_location=experiment.artifact_location if keep_locations else None,
        tags=dict(experiment.tags),
    )
    if experiment.lifecycle_stage == "deleted":
        when = experiment.last_update_time
        yield _event("ExperimentDeleted", when, (experiment.experiment_id,), experiment_id=experiment_id)


def run_events(run: Any, experiment_name: str, keep_location: bool) -> Iterator[Event]:
    """A run's creation, params, inputs and status; metrics and artifacts are separate (metric_events)."""
    info, data, run_id = run.info, run.data, run.info.run_id
    start = info.start_time or 0
    yield _event(
        "RunCreated",
        start,
        (run_id,),
        run_id=run_id,
        experiment_id=experiment_id_for_name(experiment_name),
        run_name=info.run_name,
        user_id=info.user_id or "",
        start_time=start,
        tags=dict(data.tags),
        parent_run_id=data.tags.get("mlflow.parentRunId"),
        artifact_uri=info.artifact_uri if keep_location else None,
    )
    if data.params:
        yield _event("ParamsLogged", start, (run_id,), run_id=run_id, params=dict(data.params))
    inputs = getattr(run, "inputs", None)
    datasets = [_dataset(d) for d in (inputs.dataset_inputs if inputs else [])]
    if datasets:
        yield _event("InputsLogged", start, (run_id,), run_id=run_id, datasets=datasets)
    model_ids = [m.model_id for m in getattr(inputs, "model_inputs", None) or []]
    if model_ids:
        yield _event("ModelInputsLogged", start, (run_id,), run_id=run_id, model_ids=model_ids)
    yield _event(
        "RunUpdated",
        info.end_time or start,
        (run_id,),
        run_id=run_id,
        status=info.status,
        end_time=info.end_time,
        run_name=None,
    )
    if info.lifecycle_stage == "deleted":
        yield _event("RunDeleted", info.end_time or start, (run_id,), run_id=run_id)
    outputs = getattr(run, "outputs", None)
    models = [{"model_id": o.model_id, "step": o.step} for o in (outputs.model_outputs if outputs else [])]
    if models:
        yield _event("RunOutputsLogged", info.end_time or start, (run_id,), run_id=run_id, models=models)


def _dataset(dataset_input: Any) -> dict[str, Any]:
    d = dataset_input.dataset
    return {
        "name": d.name,
        "digest": d.digest,
        "source_type": d.source_type,
        "source": d.source,
        "schema": d.schema,
        "profile": d.profile,
        "tags": {t.key: t.value for t in dataset_input.tags},
    }


def logged_model_events(model: Any, experiment_name: str, artifact_uri: str) -> Iterator[Event]:
    """An MLflow 3 logged model: created with its params and tags, finalized, and the metric points
    runs logged against it (their runs' histories hold them too, imported with each run)."""
    model_id, created = model.model_id, model.creation_timestamp
    yield _event(
        "LoggedModelCreated",
        created,
        (model_id,),
        model_id=model_id,
        experiment_id=experiment_id_for_name(experiment_name),
        name=model.name,
        model_type=model.model_type or None,
        source_run_id=model.source_run_id or None,
        artifact_uri=artifact_uri,
        tags=dict(model.tags),
        params=dict(model.params),
    )
    status = str(model.status)
    if status in ("READY", "FAILED"):
        when = model.last_updated_timestamp
        finalized = {"status": status, "status_message": model.status_message or None}
        yield _event("LoggedModelFinalized", when, (model_id,), model_id=model_id, **finalized)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for m in model.metrics or []:
        point = {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
        dataset = {"dataset_name": m.dataset_name or "", "dataset_digest": m.dataset_digest or ""}
        by_run.setdefault(m.run_id or "", []).append(point | dataset)
    for run_id, metrics in sorted(by_run.items()):
        when = max(p["timestamp"] for p in metrics)
        fields = {"run_id": run_id, "model_id": model_id, "metrics": metrics}
        yield _event("LoggedModelMetricsLogged", when, (model_id, run_id), **fields)


def metric_events(run_id: str, key: str, history: list[Any]) -> Iterator[Event]:
    """Every point of one metric, in events of at most POINTS_PER_EVENT points."""
    for start in range(0, len(history), POINTS_PER_EVENT):
        part = history[start : start + POINTS_PER_EVENT]
        columns = MetricColumns(
            run_id,
            0,
            "",
            [key],
            np.zeros(len(part), np.uint16),
            np.array([m.value for m in part], np.float64),
            np.array([m.step for m in part], np.int64),
            np.array([m.timestamp for m in part], np.int64),
        )
        last = int(columns.timestamps.max())
        yield _event("MetricBatch", last, (run_id, key, str(start)), **metric_batch_fields(columns))


def artifact_event(run_id: str, stored: Any, when: int) -> Event:
    return _event(
        "ArtifactLogged",
        when,
        (run_id, stored.path),
        run_id=run_id,
        path=stored.path,
        size=stored.size,
        sha256=stored.sha256,
        uri=stored.uri,
    )


def registry_events(model: Any, versions: list[Any]) -> Iterator[Event]:
    """A registered model, its versions, their current stages and the model's aliases (MLflow keeps no
    history of these: each is recorded at the time MLflow last changed it)."""
    model_id, name = registered_model_id(model.name), model.name
    yield _event(
        "RegisteredModelCreated",
        model.creation_timestamp,
        (name,),
        registered_model_id=model_id,
        name=name,
        description=model.description or "",
        tags=dict(model.tags),
        user="",
    )
    for v in sorted(versions, key=lambda v: int(v.version)):
        number = int(v.version)
        identity = (name, str(number))
        yield _event(
            "ModelVersionCreated",
            v.creation_timestamp,
            identity,
            registered_model_id=model_id,
            version=number,
            source=v.source or "",
            run_id=v.run_id or None,
            run_link=v.run_link or None,
            logged_model_id=getattr(v, "model_id", None) or None,
            description=v.description or "",
            tags=dict(v.tags),
            user=v.user_id or "",
        )
        if (v.current_stage or "") not in _NO_STAGE:
            yield _event(
                "ModelVersionStageTransitioned",
                v.last_updated_timestamp,
                identity,
                registered_model_id=model_id,
                version=number,
                stage=v.current_stage,
                user="",
            )
    aliases = model.aliases if isinstance(model.aliases, dict) else {a.alias: a.version for a in model.aliases}
    for alias, version in sorted(aliases.items()):
        yield _event(
            "RegisteredModelAliasSet",
            model.last_updated_timestamp,
            (name, alias),
            registered_model_id=model_id,
            alias=alias,
            version=int(version),
            user="",
        )
