"""Production monitoring events → rows of migrations/011_monitoring.sql: a window's own row, and one
row per summarised feature of a window or a reference profile."""

from __future__ import annotations

from typing import Any

from runstream.projector.decode import Time
from runstream.projector.registry_rows import Handler, Rows
from runstream.store.tables import FEATURE_SUMMARY


def _summary(f: dict[str, Any]) -> list[Any]:
    return [f["name"], *(f[k] for k in FEATURE_SUMMARY[1:])]


def _inference(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    served = [r["model_name"], r["version"], r["environment"]]
    rows["inference_windows"].append([*served, r["window_start"], r["window_end"], r["requests"], *t, eid])
    rows["inference_features"].extend([*served, r["window_start"], eid, *_summary(f)] for f in r["features"])


def _profile(rows: Rows, r: dict[str, Any], t: Time, eid: bytes) -> None:
    rows["profile_features"].extend([r["run_id"], r["name"], *t, eid, *_summary(f)] for f in r["features"])


HANDLERS: dict[str, Handler] = {"InferenceLogged": _inference, "ProfileLogged": _profile}
