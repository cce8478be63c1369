"""The chain's projection step: an event → rows of the tables it lands in, each row laid out as
store/tables.py lists the table's columns. Metric points are not rows: the batch keeps them as
columns (batch.py)."""

from __future__ import annotations

from typing import Any

from runstream.projector.decode import Event, Time
from runstream.projector.monitoring_rows import HANDLERS as MONITORING_HANDLERS
from runstream.projector.registry_rows import HANDLERS as REGISTRY_HANDLERS
from runstream.projector.registry_rows import Handler, Row, Rows


def project(event: Event, rows: Rows) -> None:
    """Appends the event's rows; an event of a kind without rows (MetricBatch) is not given here."""
    HANDLERS[event.name](rows, event.record, event.time, event.event_id)


def _tags(rows: Rows, run_id: str, tags: dict[str, str], t: Time, eid: bytes) -> None:
    rows["run_tags"].extend([run_id, k, v, 0, *t, eid] for k, v in tags.items())


def _run_event(r: dict[str, Any], t: Time, eid: bytes, kind: str, **fields: Any) -> Row:
    values = {"experiment_id": "", **fields}
    return [
        r["run_id"],
        *t,
        eid,
        kind,
        values["experiment_id"],
        values.get("run_name"),
        values.get("user_id"),
        values.get("start_time"),
        values.get("parent_run_id"),
        values.get("artifact_uri"),
        values.get("status"),
        values.get("end_time"),
    ]


def _experiment_created(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["experiment_events"].append([r["experiment_id"], *t, eid, "created", r["name"], r["artifact_location"]])
    rows["experiment_tags"].extend([r["experiment_id"], k, v, 0, *t, eid] for k, v in r["tags"].items())


def _experiment_kind(kind: str) -> Handler:
    def handle(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
        rows["experiment_events"].append([r["experiment_id"], *t, eid, kind, r.get("name"), None])

    return handle


def _experiment_tag(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    value = r.get("value")  # absent in ExperimentTagDeleted
    rows["experiment_tags"].append([r["experiment_id"], r["key"], value or "", int(value is None), *t, eid])


def _run_created(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_events"].append(
        _run_event(
            r,
            t,
            eid,
            "created",
            experiment_id=r["experiment_id"],
            run_name=r["run_name"],
            user_id=r["user_id"],
            start_time=r["start_time"],
            parent_run_id=r["parent_run_id"],
            artifact_uri=r["artifact_uri"],
        )
    )
    _tags(rows, r["run_id"], r["tags"], t, eid)


def _run_updated(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_events"].append(
        _run_event(r, t, eid, "updated", run_name=r["run_name"], status=r["status"], end_time=r["end_time"])
    )


def _run_kind(kind: str) -> Handler:
    def handle(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
        rows["run_events"].append(_run_event(r, t, eid, kind))

    return handle


def _params(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_params"].extend([r["run_id"], k, v, *t, eid] for k, v in r["params"].items())


def _tag_deleted(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_tags"].append([r["run_id"], r["key"], "", 1, *t, eid])


def _artifact(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_artifacts"].append([r["run_id"], r["path"], r["size"], r["sha256"], r["uri"], *t, eid])


def _deleted_artifacts(table: str, owner: str) -> Handler:
    """Deleted files as records without bytes (no sha256): a path's latest record says whether it is there."""

    def handle(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
        rows[table].extend([r[owner], path, 0, "", "", *t, eid] for path in r["paths"])

    return handle


def _inputs(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_inputs"].extend(
        [
            r["run_id"],
            d["name"],
            d["digest"],
            d["source_type"],
            d["source"],
            d["schema"],
            d["profile"],
            d["tags"],
            *t,
            eid,
        ]
        for d in r["datasets"]
    )


def _model_event(r: dict[str, Any], t: Time, eid: bytes, kind: str, **fields: Any) -> Row:
    f = {"experiment_id": "", **fields}
    columns = ("name", "model_type", "source_run_id", "artifact_uri", "status", "status_message")
    return [r["model_id"], *t, eid, kind, f["experiment_id"], *(f.get(c) for c in columns)]


def _model_created(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    fields = {k: r[k] for k in ("experiment_id", "name", "model_type", "source_run_id", "artifact_uri")}
    rows["logged_model_events"].append(_model_event(r, t, eid, "created", **fields))
    rows["logged_model_tags"].extend([r["model_id"], k, v, 0, *t, eid] for k, v in r["tags"].items())
    _model_params(rows, r, t, eid)


def _model_finalized(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    fields = {"status": r["status"], "status_message": r["status_message"]}
    rows["logged_model_events"].append(_model_event(r, t, eid, "finalized", **fields))


def _model_tags(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["logged_model_tags"].extend([r["model_id"], k, v, 0, *t, eid] for k, v in r["tags"].items())


def _model_params(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["logged_model_params"].extend([r["model_id"], k, v, *t, eid] for k, v in r["params"].items())


def _model_artifact(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["model_artifacts"].append([r["model_id"], r["path"], r["size"], r["sha256"], r["uri"], *t, eid])


def _run_outputs(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_outputs"].extend([r["run_id"], m["model_id"], m["step"], *t, eid] for m in r["models"])


def _model_inputs(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["run_model_inputs"].extend([r["run_id"], model_id, *t, eid] for model_id in r["model_ids"])


def _model_metrics(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["logged_model_metrics"].extend(
        [
            r["model_id"],
            m["key"],
            m["step"],
            m["timestamp"],
            r["run_id"],
            m["dataset_name"],
            m["dataset_digest"],
            m["value"],
            *t,
            eid,
        ]
        for m in r["metrics"]
    )


HANDLERS: dict[str, Handler] = {
    "ExperimentCreated": _experiment_created,
    "ExperimentRenamed": _experiment_kind("renamed"),
    "ExperimentDeleted": _experiment_kind("deleted"),
    "ExperimentRestored": _experiment_kind("restored"),
    "ExperimentTagSet": _experiment_tag,
    "ExperimentTagDeleted": _experiment_tag,
    "RunCreated": _run_created,
    "RunUpdated": _run_updated,
    "RunDeleted": _run_kind("deleted"),
    "RunRestored": _run_kind("restored"),
    "ParamsLogged": _params,
    "TagsSet": lambda rows, r, t, eid: _tags(rows, r["run_id"], r["tags"], t, eid),
    "TagDeleted": _tag_deleted,
    "ArtifactLogged": _artifact,
    "ArtifactsDeleted": _deleted_artifacts("run_artifacts", "run_id"),
    "InputsLogged": _inputs,
    **REGISTRY_HANDLERS,
    **MONITORING_HANDLERS,
    "LoggedModelCreated": _model_created,
    "LoggedModelFinalized": _model_finalized,
    "LoggedModelDeleted": lambda rows, r, t, eid: rows["logged_model_events"].append(
        _model_event(r, t, eid, "deleted")
    ),
    "LoggedModelTagsSet": _model_tags,
    "LoggedModelTagDeleted": lambda rows, r, t, eid: rows["logged_model_tags"].append(
        [r["model_id"], r["key"], "", 1, *t, eid]
    ),
    "LoggedModelParamsLogged": _model_params,
    "ModelArtifactLogged": _model_artifact,
    "ModelArtifactsDeleted": _deleted_artifacts("model_artifacts", "model_id"),
    "RunOutputsLogged": _run_outputs,
    "ModelInputsLogged": _model_inputs,
    "LoggedModelMetricsLogged": _model_metrics,
}
