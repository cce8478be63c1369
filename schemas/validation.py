"""Semantic rules that Avro cannot express. The gateway answers 400 when they fail; the projector
dead-letters such events (they can still reach the log by producing to Kafka directly)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from runstream.schemas.artifact_paths import UnsafePath, artifact_path
from runstream.schemas.events import metric_columns

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_RUN_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_EXPERIMENT_NAME = 500
MAX_RUN_NAME = 500
MAX_MODEL_NAME = 256
MAX_ALIAS = 255
MAX_REGISTRY_TAG_VALUE = 100_000
MAX_REGISTRY_TEXT = 100_000  # descriptions, sources
STAGES = ("None", "Staging", "Production", "Archived")

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ALIAS = re.compile(r"^[\w\-]+$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
MODEL_STATUSES = ("PENDING", "READY", "FAILED")
# MLflow's webhook vocabulary (3.3+): entity.action pairs a webhook can be sent, and its statuses.
WEBHOOK_EVENTS = frozenset(
    {
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_tag.deleted",
        "model_version_alias.created",
        "model_version_alias.deleted",
        "prompt.created",
        "prompt_version.created",
        "prompt_tag.set",
        "prompt_tag.deleted",
        "prompt_version_tag.set",
        "prompt_version_tag.deleted",
        "prompt_alias.created",
        "prompt_alias.deleted",
        "budget_policy.exceeded",
        "model_version.drift_detected",  # runstream's: webhooks/drift_alerts.py
    }
)
WEBHOOK_STATUSES = ("ACTIVE", "DISABLED")
MAX_WEBHOOK_URL = 2048
_ENVIRONMENT = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ALIAS - 1}}}\Z")
_WEBHOOK_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)  # MLflow's rule
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class InvalidEvent(ValueError):
    """A well-formed event whose content breaks the contract's rules."""


def _check(ok: bool, reason: str) -> None:
    if not ok:
        raise InvalidEvent(reason)


def _text(value: str, what: str, limit: int, allow_empty: bool = False) -> None:
    _check(allow_empty or bool(value), f"{what} must not be empty")
    _check(len(value) <= limit, f"{what} longer than {limit} characters")
    _check("\x00" not in value, f"{what} contains a NUL character")


def _keys(keys: Iterable[str], what: str) -> None:
    for key in keys:
        _text(key, f"{what} key", MAX_KEY)


def _values(mapping: dict[str, str], what: str, limit: int) -> None:
    _keys(mapping, what)
    for key, value in mapping.items():
        _text(value, f"{what} {key!r} value", limit, allow_empty=True)


def _metric_batch(record: dict[str, Any]) -> None:
    try:
        cols = metric_columns(record)
    except ValueError as exc:
        raise InvalidEvent(f"metric columns are not whole arrays: {exc}") from exc
    n = len(cols.values)
    _check(
        len(cols.key_index) == n and len(cols.steps) == n and len(cols.timestamps) == n,
        "metric columns differ in length",
    )
    _check(len(cols.keys) <= 65535, "more than 65535 metric keys in one batch")
    _keys(cols.keys, "metric")
    _check(len(set(cols.keys)) == len(cols.keys), "metric keys repeat in one batch")
    if n:
        _check(int(cols.key_index.max()) < len(cols.keys), "key index out of range")
        _check(int(cols.timestamps.min()) >= 0, "negative metric timestamp")
    _check(cols.rank >= 0, "negative rank")
    _text(cols.node, "node", MAX_KEY, allow_empty=True)


def validate(name: str, record: dict[str, Any]) -> None:
    _check(record["header"]["event_time"] >= 0, "negative event time")
    if record.get("run_id") is not None:  # optional in ModelVersionCreated
        _check(bool(_RUN_ID.match(record["run_id"])), "run_id must be 32 lowercase hex characters")
    if "registered_model_id" in record:
        _registry(name, record)
    if "experiment_id" in record:
        _check(bool(_EXPERIMENT_ID.match(record["experiment_id"])), "invalid experiment_id")
    if "model_id" in record:
        _check(bool(_MODEL_ID.match(record["model_id"])), "model_id must be m- and 32 lowercase hex characters")
    match name:
        case "ExperimentCreated":
            _text(record["name"], "experiment name", MAX_EXPERIMENT_NAME)
            _values(record["tags"], "experiment tag", MAX_EXPERIMENT_TAG_VALUE)
        case "ExperimentRenamed":
            _text(record["name"], "experiment name", MAX_EXPERIMENT_NAME)
        case "ExperimentTagSet":
            _values({record["key"]: record["value"]}, "experiment tag", MAX_EXPERIMENT_TAG_VALUE)
        case "ExperimentTagDeleted" | "TagDeleted":
            _keys([record["key"]], "tag")
        case "RunCreated":
            _check(record["start_time"] >= 0, "negative start_time")
            _text(record["run_name"] or "", "run name", MAX_RUN_NAME, allow_empty=True)
            _values(record["tags"], "tag", MAX_RUN_TAG_VALUE)
            parent = record["parent_run_id"]
            _check(parent is None or bool(_RUN_ID.match(parent)), "invalid parent_run_id")
        case "RunUpdated":
            _check(record["end_time"] is None or record["end_time"] >= 0, "negative end_time")
            _text(record["run_name"] or "", "run name", MAX_RUN_NAME, allow_empty=True)
        case "ParamsLogged":
            _values(record["params"], "param", MAX_PARAM_VALUE)
        case "TagsSet":
            _values(record["tags"], "tag", MAX_RUN_TAG_VALUE)
        case "MetricBatch":
            _metric_batch(record)
        case "ArtifactLogged" | "ModelArtifactLogged":
            try:
                artifact_path(record["path"])
            except UnsafePath as exc:
                raise InvalidEvent(str(exc)) from exc
            _check(record["size"] >= 0, "negative artifact size")
            _check(bool(_SHA256.match(record["sha256"])), "sha256 must be 64 lowercase hex characters")
        case "ArtifactsDeleted" | "ModelArtifactsDeleted":
            try:
                for path in record["paths"]:
                    artifact_path(path)
            except UnsafePath as exc:
                raise InvalidEvent(str(exc)) from exc
        case "LoggedModelCreated":
            _text(record["name"], "model name", MAX_RUN_NAME)
            run = record["source_run_id"]
            _check(run is None or bool(_RUN_ID.match(run)), "invalid source_run_id")
            _values(record["tags"], "model tag", MAX_RUN_TAG_VALUE)
            _values(record["params"], "model param", MAX_PARAM_VALUE)
        case "LoggedModelFinalized":
            _check(record["status"] in MODEL_STATUSES, f"model status must be one of {', '.join(MODEL_STATUSES)}")
        case "LoggedModelTagsSet":
            _values(record["tags"], "model tag", MAX_RUN_TAG_VALUE)
        case "LoggedModelTagDeleted":
            _keys([record["key"]], "model tag")
        case "LoggedModelParamsLogged":
            _values(record["params"], "model param", MAX_PARAM_VALUE)
        case "RunOutputsLogged":
            for output in record["models"]:
                _check(bool(_MODEL_ID.match(output["model_id"])), "invalid model_id in outputs")
        case "ModelInputsLogged":
            for model_id in record["model_ids"]:
                _check(bool(_MODEL_ID.match(model_id)), "invalid model_id in inputs")
        case "LoggedModelMetricsLogged":
            _keys([m["key"] for m in record["metrics"]], "metric")
            for m in record["metrics"]:
                _text(m["dataset_name"], "dataset name", MAX_KEY, allow_empty=True)
                _text(m["dataset_digest"], "dataset digest", MAX_KEY, allow_empty=True)
        case "GateDecided":
            _check(record["kind"] in ("alias", "stage"), "a gate decides an alias or a stage")
            _text(record["target"], "gate target", MAX_ALIAS)
            _check(record["version"] >= 1, "a version number starts at 1")
        case "ModelDeployed" | "ModelUndeployed":
            problem = environment_problem(record["environment"])
            _check(problem is None, problem or "")
            _check(record.get("version", 1) >= 1, "a version number starts at 1")
            _text(record["note"], "note", MAX_REGISTRY_TEXT, allow_empty=True)
        case "ProfileLogged":
            _text(record["name"], "profile name", MAX_KEY)
            _check(record["rows"] >= 0, "negative row count")
            _summaries(record["features"])
        case "InferenceLogged":
            _text(record["model_name"], "model name", MAX_MODEL_NAME)
            problem = environment_problem(record["environment"])
            _check(problem is None, problem or "")
            _check(record["version"] >= 1, "a version number starts at 1")
            _check(0 <= record["window_start"] <= record["window_end"], "a window starts at or before its end")
            _check(record["requests"] >= 0, "negative request count")
            _summaries(record["features"])
        case "WebhookSaved":
            _webhook(record)
        case "WebhookDeleted":
            _check(bool(_UUID.match(record["webhook_id"])), "webhook_id must be a lowercase UUID")
        case "InputsLogged":
            for dataset in record["datasets"]:
                _text(dataset["name"], "dataset name", MAX_KEY)
                _values(dataset["tags"], "dataset tag", MAX_RUN_TAG_VALUE)


def _summaries(features: list[dict[str, Any]]) -> None:
    """FeatureSummary records (schemas/avro/feature_summary.avsc): named once each, counts that add up."""
    names = [f["name"] for f in features]
    _keys(names, "feature")
    _check(len(set(names)) == len(names), "a feature is summarised once per event")
    for f in features:
        _check(f["kind"] in ("number", "category"), "a feature's kind is number or category")
        _check(len(f["buckets"]) == len(f["bucket_counts"]), "one count per bucket")
        _check(len(f["categories"]) == len(f["category_counts"]), "one count per category")
        counts = f["bucket_counts"] + f["category_counts"]
        _check(all(c > 0 for c in counts) and f["missing"] >= 0, "counts are positive")
        _check(sum(counts) == f["count"], f"feature {f['name']!r}: the counts add up to its count")
        _check(len(set(f["buckets"])) == len(f["buckets"]), "each bucket once")
        _check(len(set(f["categories"])) == len(f["categories"]), "each category once")
        for category in f["categories"]:
            _text(category, "category", MAX_PARAM_VALUE, allow_empty=True)


def environment_problem(name: str) -> str | None:
    if _ENVIRONMENT.match(name):
        return None
    return (
        f"environment {name!r} is invalid: 1 to {MAX_ALIAS} letters, digits, '.', '_' or '-', starting with a "
        "letter or digit"
    )


def webhook_name_problem(name: str) -> str | None:
    if _WEBHOOK_NAME.match(name):
        return None
    return (
        f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, be less than 63 "
        "characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens (-)."
    )


def _webhook(record: dict[str, Any]) -> None:
    _check(bool(_UUID.match(record["webhook_id"])), "webhook_id must be a lowercase UUID")
    problem = webhook_name_problem(record["name"])
    _check(problem is None, problem or "")
    _text(record["url"], "webhook URL", MAX_WEBHOOK_URL)
    _text(record["description"], "description", MAX_REGISTRY_TEXT, allow_empty=True)
    _check(bool(record["events"]), "a webhook needs at least one event")
    unknown = sorted(set(record["events"]) - WEBHOOK_EVENTS)
    _check(not unknown, f"unknown webhook events {unknown}; known: {sorted(WEBHOOK_EVENTS)}")
    _check(record["status"] in WEBHOOK_STATUSES, f"webhook status must be one of {', '.join(WEBHOOK_STATUSES)}")


def _registry(name: str, record: dict[str, Any]) -> None:
    _check(bool(_RUN_ID.match(record["registered_model_id"])), "registered_model_id must be 32 lowercase hex")
    _text(record["user"], "user", MAX_KEY, allow_empty=True)  # nobody with auth off: MLflow's empty user_id
    if "version" in record:
        _check(record["version"] >= 1, "model versions start at 1")
    if "name" in record:
        _text(record["name"], "model name", MAX_MODEL_NAME)
        _check(not any(c in record["name"] for c in "/:"), "model names cannot contain '/' or ':'")
    if "alias" in record:
        _text(record["alias"], "alias", MAX_ALIAS)
        _check(bool(_ALIAS.match(record["alias"])), "aliases may only contain alphanumerics, '_' and '-'")
    for field in ("description", "source"):
        if field in record:
            _text(record[field], field, MAX_REGISTRY_TEXT, allow_empty=True)
    if "tags" in record:
        _values(record["tags"], "tag", MAX_REGISTRY_TAG_VALUE)
    if "key" in record:
        _values({record["key"]: record.get("value", "")}, "tag", MAX_REGISTRY_TAG_VALUE)
    if name == "ModelVersionStageTransitioned":
        _check(record["stage"] in STAGES, f"stage must be one of {', '.join(STAGES)}")
