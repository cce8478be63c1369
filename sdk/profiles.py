"""Columns of rows → FeatureSummary records (schemas/avro/feature_summary.avsc), computed where the
rows are (a training job, a model server), so only counts per bucket or category travel: numbers by
the buckets of schemas/sketch.py, anything else by category."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runstream.schemas.sketch import bucket_ids

MAX_CATEGORIES = 1000
OTHER = "__other__"
Summary = dict[str, Any]


def columns(data: Any) -> dict[str, np.ndarray]:
    """A mapping of names to array-likes, or a pandas/polars DataFrame, as named numpy columns."""
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # a DataFrame, without importing its library
        return {str(c): np.asarray(data[c]) for c in data.columns}
    raise TypeError(f"expected a mapping of column names to arrays, or a DataFrame; got {type(data).__name__}")


def summarize(name: str, column: Any) -> Summary:
    values = np.asarray(column)
    if values.dtype.kind in "biuf":
        return _numbers(name, values.astype(np.float64, copy=False))
    return _categories(name, values)


def summarize_all(data: Any) -> list[Summary]:
    return [summarize(name, column) for name, column in columns(data).items()]


def _numbers(name: str, values: np.ndarray) -> Summary:
    present = values[~np.isnan(values)]
    buckets, counts = np.unique(bucket_ids(present), return_counts=True)
    finite = present[np.isfinite(present)]
    return {
        "name": name,
        "kind": "number",
        "count": len(present),
        "missing": len(values) - len(present),
        "buckets": buckets.tolist(),
        "bucket_counts": counts.tolist(),
        "categories": [],
        "category_counts": [],
        "sum": float(finite.sum()),
    }


def _categories(name: str, values: np.ndarray) -> Summary:
    present = [str(v) for v in values.tolist() if v is not None and v == v]  # v != v: NaN
    tally: dict[str, int] = {}
    for v in present:
        tally[v] = tally.get(v, 0) + 1
    pairs = sorted(tally.items(), key=lambda p: (-p[1], p[0]))  # the most seen first, kept past MAX_CATEGORIES
    kept, rest = pairs[:MAX_CATEGORIES], pairs[MAX_CATEGORIES:]
    if rest:
        kept.append((OTHER, sum(c for _, c in rest)))
    return {
        "name": name,
        "kind": "category",
        "count": len(present),
        "missing": len(values) - len(present),
        "buckets": [],
        "bucket_counts": [],
        "categories": [c for c, _ in kept],
        "category_counts": [n for _, n in kept],
        "sum": 0.0,
    }
