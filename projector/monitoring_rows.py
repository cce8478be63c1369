"""Production monitoring events → rows of migrations/011_monitoring.sql: a window's own row, and one
row per summarised feature of a window or a reference profile."""

from __future__ import annotations

from typing import Any

from runstream.projector.registry_rows import Handler, Rows, Time

_SUMMARY = ["feature", "kind", "count", "missing", "sum", "buckets", "bucket_counts", "categories", "category_counts"]
COLUMNS: dict[str, list[str]] = {
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
    "inference_features": ["model_name", "version", "environment", "window_start", "event_id", *_SUMMARY],
    "profile_features": ["run_id", "name", "event_time", "seq", "event_id", *_SUMMARY],
}


def _summary(f: dict[str, Any]) -> list[Any]:
    return [f["name"], *(f[k] for k in _SUMMARY[1:])]


def _inference(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    served = [r["model_name"], r["version"], r["environment"]]
    rows["inference_windows"].append([*served, r["window_start"], r["window_end"], r["requests"], *t, eid])
    rows["inference_features"].extend([*served, r["window_start"], eid, *_summary(f)] for f in r["features"])


def _profile(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["profile_features"].extend([r["run_id"], r["name"], *t, eid, *_summary(f)] for f in r["features"])


HANDLERS: dict[str, Handler] = {"InferenceLogged": _inference, "ProfileLogged": _profile}
