"""The tables' shapes, written once: the columns the projector inserts into each table, in the order
its rows are built (projector/project.py, points.py and beside them), and the grids the reads share. The migrations
(projector/migrations/) create the tables; tests/store/test_tables.py checks these lists against
them: every column listed exists, and every column left out is filled by the table itself."""

from __future__ import annotations

ROLLUP_BLOCK = 64  # steps per metric_rollup row: the projector aggregates, the series reads, by this grid

# One summarised feature of an inference window or a reference profile (migrations/011_monitoring.sql).
FEATURE_SUMMARY = [
    "feature",
    "kind",
    "count",
    "missing",
    "sum",
    "buckets",
    "bucket_counts",
    "categories",
    "category_counts",
]

REGISTRY_TABLES: dict[str, list[str]] = {
    "registered_model_events": [
        "registered_model_id",
        "event_time",
        "seq",
        "event_id",
        "kind",
        "name",
        "description",
        "user",
    ],
    "registered_model_tags": ["registered_model_id", "key", "value", "deleted", "event_time", "seq", "event_id"],
    "registered_model_aliases": ["registered_model_id", "alias", "version", "event_time", "seq", "event_id", "user"],
    "model_version_events": [
        "registered_model_id",
        "version",
        "event_time",
        "seq",
        "event_id",
        "kind",
        "source",
        "run_id",
        "run_link",
        "logged_model_id",
        "description",
        "stage",
        "user",
    ],
    "model_version_tags": [
        "registered_model_id",
        "version",
        "key",
        "value",
        "deleted",
        "event_time",
        "seq",
        "event_id",
    ],
    "gate_decisions": [
        "registered_model_id",
        "event_time",
        "seq",
        "event_id",
        "kind",
        "target",
        "version",
        "current_version",
        "condition",
        "allowed",
        "checks",
        "user",
    ],
    "model_deployments": [
        "registered_model_id",
        "environment",
        "version",
        "note",
        "event_time",
        "seq",
        "event_id",
        "user",
    ],
    "webhook_events": [
        "webhook_id",
        "event_time",
        "seq",
        "event_id",
        "deleted",
        "name",
        "description",
        "url",
        "events",
        "secret",
        "status",
        "user",
    ],
}

MONITORING_TABLES: dict[str, list[str]] = {
    "inference_windows": [
        "model_name",
        "version",
        "environment",
        "window_start",
        "window_end",
        "requests",
        "event_time",
        "seq",
        "event_id",
    ],
    "inference_features": ["model_name", "version", "environment", "window_start", "event_id", *FEATURE_SUMMARY],
    "profile_features": ["run_id", "name", "event_time", "seq", "event_id", *FEATURE_SUMMARY],
}

EVENT_TABLES: dict[str, list[str]] = {
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
    **REGISTRY_TABLES,
    **MONITORING_TABLES,
}

# The current state, folded from the event rows (projector/state.py).
STATE_TABLES: dict[str, list[str]] = {
    "run_state": ["run_id", "created", "start_time", "name_set", "status_set", "end_set", "lifecycle"],
    "param_state": ["key", "run_id", "first"],
    "tag_state": ["key", "run_id", "latest"],
}

# A batch's metric points and what the projector derives from them (projector/points.py builds
# its Arrow tables in these columns' order).
METRIC_TABLES: dict[str, list[str]] = {
    "metrics": ["run_id", "key", "step", "timestamp", "rank", "value", "node", "src_partition", "src_offset"],
    "metric_rollup": [
        "run_id",
        "key",
        "rank",
        "block",
        "first_point",
        "last_point",
        "low_point",
        "high_point",
        "total",
        "finite",
        "points",
        "src_partition",
        "src_offset",
    ],
    "metric_summary": ["key", "run_id", "latest", "min_value", "max_value", "points", "src_partition", "src_offset"],
}

PROGRESS = ["consumer_group", "partition", "offset", "updated_at"]  # projector_progress
