"""Decoded events → rows for each ClickHouse table. Metric points stay numpy columns from the message
bytes to the Arrow table that is inserted; other events are few and become plain rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from runstream.ingest.log.base import LogMessage, Positions
from runstream.projector.dedup import METRIC_TABLES, MetricDedup
from runstream.projector.monitoring_rows import COLUMNS as MONITORING_COLUMNS
from runstream.projector.monitoring_rows import HANDLERS as MONITORING_HANDLERS
from runstream.projector.points import Points
from runstream.projector.registry_rows import COLUMNS as REGISTRY_COLUMNS
from runstream.projector.registry_rows import HANDLERS as REGISTRY_HANDLERS
from runstream.schemas.codec import UndecodableEvent, decode
from runstream.schemas.events import MetricColumns, metric_columns
from runstream.schemas.validation import InvalidEvent, validate

Row = list[Any]

COLUMNS: dict[str, list[str]] = {
    "experiment_events": ["experiment_id", "event_time", "seq", "event_id", "kind", "name", "artifact_location"],
    "experiment_tags": ["experiment_id", "key", "value", "deleted", "event_time", "seq", "event_id"],
    "run_events": [
        "run_id",
        "event_time",
        "seq",
        "event_id",
        "kind",
        "experiment_id",
        "run_name",
        "user_id",
        "start_time",
        "parent_run_id",
        "artifact_uri",
        "status",
        "end_time",
    ],
    "run_params": ["run_id", "key", "value", "event_time", "seq", "event_id"],
    "run_tags": ["run_id", "key", "value", "deleted", "event_time", "seq", "event_id"],
    "run_artifacts": ["run_id", "path", "size", "sha256", "uri", "event_time", "seq", "event_id"],
    "run_inputs": [
        "run_id",
        "name",
        "digest",
        "source_type",
        "source",
        "schema",
        "profile",
        "tags",
        "event_time",
        "seq",
        "event_id",
    ],
    "logged_model_events": [
        "model_id",
        "event_time",
        "seq",
        "event_id",
        "kind",
        "experiment_id",
        "name",
        "model_type",
        "source_run_id",
        "artifact_uri",
        "status",
        "status_message",
    ],
    "logged_model_tags": ["model_id", "key", "value", "deleted", "event_time", "seq", "event_id"],
    "logged_model_params": ["model_id", "key", "value", "event_time", "seq", "event_id"],
    "model_artifacts": ["model_id", "path", "size", "sha256", "uri", "event_time", "seq", "event_id"],
    "run_outputs": ["run_id", "model_id", "step", "event_time", "seq", "event_id"],
    "run_model_inputs": ["run_id", "model_id", "event_time", "seq", "event_id"],
    "logged_model_metrics": [
        "model_id",
        "key",
        "step",
        "timestamp",
        "run_id",
        "dataset_name",
        "dataset_digest",
        "value",
        "event_time",
        "seq",
        "event_id",
    ],
    "dead_letters": ["received_at", "source", "partition", "offset", "reason", "payload"],
    **REGISTRY_COLUMNS,
    **MONITORING_COLUMNS,
}


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


@dataclass
class Batch:
    """Everything read since the last flush, grouped by destination table."""

    consumer_group: str
    dedup: MetricDedup | None = None
    rows: dict[str, list[Row]] = field(default_factory=lambda: {table: [] for table in COLUMNS})
    # columns, partition, offset, and per table of METRIC_TABLES whether it still needs the points
    metrics: list[tuple[MetricColumns, int, int, tuple[bool, ...]]] = field(default_factory=list)
    metric_points: int = 0
    metric_event_ids: list[bytes] = field(default_factory=list)  # marked as seen by this batch's reads
    messages: int = 0
    next_offsets: Positions = field(default_factory=dict)
    first_offsets: Positions = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _message: LogMessage | None = None

    def add(self, message: LogMessage) -> None:
        self._message = message
        self.messages += 1
        self.next_offsets[message.partition] = message.offset + 1
        self.first_offsets.setdefault(message.partition, message.offset)
        try:
            name, record = decode(message.value)
            validate(name, record)
            self._project(name, record)
        except (UndecodableEvent, InvalidEvent) as exc:
            self.dead_letter(message, str(exc))

    @property
    def token(self) -> str:
        """The log positions this batch covers: a retry of its inserts carries the same."""
        spans = (f"{p}:{self.first_offsets[p]}-{end}" for p, end in sorted(self.next_offsets.items()))
        return f"{self.consumer_group}/{','.join(spans)}"

    def dead_letter(self, message: LogMessage, reason: str) -> None:
        self.rows["dead_letters"].append(
            [datetime.now(UTC), self.consumer_group, message.partition, message.offset, reason, message.value]
        )

    def _project(self, name: str, r: dict[str, Any]) -> None:
        h = r["header"]
        # Events of one run (or experiment) share a partition, so (event_time, offset) orders them
        # even within one millisecond.
        assert self._message is not None
        _HANDLERS[name](self, r, (h["event_time"], self._message.offset), h["event_id"])

    def tags(self, run_id: str, tags: dict[str, str], t: Time, eid: bytes) -> None:
        self.rows["run_tags"].extend([run_id, k, v, 0, *t, eid] for k, v in tags.items())

    def add_metrics(self, columns: MetricColumns, event_id: bytes) -> None:
        message = self._message
        assert message is not None
        if self.dedup is None:
            needed = (True,) * len(METRIC_TABLES)
        else:
            if not self.dedup.resent(event_id):
                self.metric_event_ids.append(event_id)
            needed = self.dedup.needed(message.partition, message.offset, event_id, columns.run_id)
        if any(needed):
            self.metrics.append((columns, message.partition, message.offset, needed))
            self.metric_points += len(columns)

    def metric_tables(self) -> dict[str, pa.Table]:
        """The points each metric table still needs, as Arrow tables (points, rollup, summary)."""
        out = {}
        for t, table in enumerate(METRIC_TABLES):
            chosen = [(c, p, o) for c, p, o, needed in self.metrics if needed[t]]
            if chosen:
                points = _points(chosen)
                out[table] = {
                    "metrics": points.metrics_table,
                    "metric_rollup": points.rollup_table,
                    "metric_summary": points.summary_table,
                }[table]()
        return out


Time = tuple[int, int]  # (event_time, log offset)
Handler = Callable[[Batch, dict[str, Any], Time, bytes], None]


def _experiment_created(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["experiment_events"].append([r["experiment_id"], *t, eid, "created", r["name"], r["artifact_location"]])
    b.rows["experiment_tags"].extend([r["experiment_id"], k, v, 0, *t, eid] for k, v in r["tags"].items())


def _experiment_kind(kind: str) -> Handler:
    def handle(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
        b.rows["experiment_events"].append([r["experiment_id"], *t, eid, kind, r.get("name"), None])

    return handle


def _experiment_tag(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    value = r.get("value")  # absent in ExperimentTagDeleted
    b.rows["experiment_tags"].append([r["experiment_id"], r["key"], value or "", int(value is None), *t, eid])


def _run_created(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_events"].append(
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
    b.tags(r["run_id"], r["tags"], t, eid)


def _run_updated(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_events"].append(
        _run_event(r, t, eid, "updated", run_name=r["run_name"], status=r["status"], end_time=r["end_time"])
    )


def _run_kind(kind: str) -> Handler:
    def handle(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
        b.rows["run_events"].append(_run_event(r, t, eid, kind))

    return handle


def _params(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_params"].extend([r["run_id"], k, v, *t, eid] for k, v in r["params"].items())


def _tag_deleted(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_tags"].append([r["run_id"], r["key"], "", 1, *t, eid])


def _artifact(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_artifacts"].append([r["run_id"], r["path"], r["size"], r["sha256"], r["uri"], *t, eid])


def _deleted_artifacts(table: str, owner: str) -> Handler:
    """Deleted files as records without bytes (no sha256): a path's latest record says whether it is there."""

    def handle(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
        b.rows[table].extend([r[owner], path, 0, "", "", *t, eid] for path in r["paths"])

    return handle


def _inputs(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_inputs"].extend(
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


def _on_rows(handler: Callable[[dict[str, list[Row]], dict[str, Any], Time, bytes], None]) -> Handler:
    def handle(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
        handler(b.rows, r, t, eid)

    return handle


def _model_event(r: dict[str, Any], t: Time, eid: bytes, kind: str, **fields: Any) -> Row:
    f = {"experiment_id": "", **fields}
    columns = ("name", "model_type", "source_run_id", "artifact_uri", "status", "status_message")
    return [r["model_id"], *t, eid, kind, f["experiment_id"], *(f.get(c) for c in columns)]


def _model_created(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    fields = {k: r[k] for k in ("experiment_id", "name", "model_type", "source_run_id", "artifact_uri")}
    b.rows["logged_model_events"].append(_model_event(r, t, eid, "created", **fields))
    b.rows["logged_model_tags"].extend([r["model_id"], k, v, 0, *t, eid] for k, v in r["tags"].items())
    _model_params(b, r, t, eid)


def _model_finalized(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    fields = {"status": r["status"], "status_message": r["status_message"]}
    b.rows["logged_model_events"].append(_model_event(r, t, eid, "finalized", **fields))


def _model_tags(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["logged_model_tags"].extend([r["model_id"], k, v, 0, *t, eid] for k, v in r["tags"].items())


def _model_params(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["logged_model_params"].extend([r["model_id"], k, v, *t, eid] for k, v in r["params"].items())


def _model_artifact(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["model_artifacts"].append([r["model_id"], r["path"], r["size"], r["sha256"], r["uri"], *t, eid])


def _run_outputs(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_outputs"].extend([r["run_id"], m["model_id"], m["step"], *t, eid] for m in r["models"])


def _model_inputs(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["run_model_inputs"].extend([r["run_id"], model_id, *t, eid] for model_id in r["model_ids"])


def _model_metrics(b: Batch, r: dict[str, Any], t: Time, eid: bytes) -> None:
    b.rows["logged_model_metrics"].extend(
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


_HANDLERS: dict[str, Handler] = {
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
    "TagsSet": lambda b, r, t, eid: b.tags(r["run_id"], r["tags"], t, eid),
    "TagDeleted": _tag_deleted,
    "MetricBatch": lambda b, r, t, eid: b.add_metrics(metric_columns(r), eid),
    "ArtifactLogged": _artifact,
    "ArtifactsDeleted": _deleted_artifacts("run_artifacts", "run_id"),
    "InputsLogged": _inputs,
    **{name: _on_rows(handler) for name, handler in (REGISTRY_HANDLERS | MONITORING_HANDLERS).items()},
    "LoggedModelCreated": _model_created,
    "LoggedModelFinalized": _model_finalized,
    "LoggedModelDeleted": lambda b, r, t, eid: b.rows["logged_model_events"].append(_model_event(r, t, eid, "deleted")),
    "LoggedModelTagsSet": _model_tags,
    "LoggedModelTagDeleted": lambda b, r, t, eid: b.rows["logged_model_tags"].append(
        [r["model_id"], r["key"], "", 1, *t, eid]
    ),
    "LoggedModelParamsLogged": _model_params,
    "ModelArtifactLogged": _model_artifact,
    "ModelArtifactsDeleted": _deleted_artifacts("model_artifacts", "model_id"),
    "RunOutputsLogged": _run_outputs,
    "ModelInputsLogged": _model_inputs,
    "LoggedModelMetricsLogged": _model_metrics,
}


def _points(messages: list[tuple[MetricColumns, int, int]]) -> Points:
    """Concatenates messages' columns; strings become indices into per-batch name lists."""
    key_ids: dict[str, int] = {}
    run_ids: dict[str, int] = {}
    node_ids: dict[str, int] = {}

    def each(value: Callable[[MetricColumns, int, int], Any], dtype: type) -> np.ndarray:
        return np.concatenate([np.full(len(c), value(c, p, o), dtype) for c, p, o in messages])

    def remapped(c: MetricColumns) -> np.ndarray:
        remap = np.array([key_ids.setdefault(k, len(key_ids)) for k in c.keys], np.int32)
        return remap[c.key_index] if len(remap) else np.zeros(0, np.int32)

    columns = [c for c, _, _ in messages]
    return Points(
        run=each(lambda c, p, o: run_ids.setdefault(c.run_id, len(run_ids)), np.int32),
        key=np.concatenate([remapped(c) for c in columns]),
        rank=each(lambda c, p, o: c.rank, np.uint32),
        node=each(lambda c, p, o: node_ids.setdefault(c.node, len(node_ids)), np.int32),
        step=np.concatenate([c.steps for c in columns]),
        timestamp=np.concatenate([c.timestamps for c in columns]),
        value=np.concatenate([c.values for c in columns]),
        partition=each(lambda c, p, o: p, np.uint32),
        offset=each(lambda c, p, o: o, np.int64),
        run_ids=list(run_ids),
        keys=list(key_ids),
        nodes=list(node_ids),
    )
