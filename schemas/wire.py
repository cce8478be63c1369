"""The read API's wire formats, shared by the server that writes them and the client that reads them
(no server library here): JSON numbers as MLflow writes them, Arrow IPC streams with the JSON body's
other fields in their schema metadata, and a bucket table cut into series."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
METADATA_KEY = b"runstream"
SERIES_COLUMNS = ["x_first", "first", "x_last", "last", "min", "x_of_min", "max", "x_of_max", "mean", "count"]


def json_float(value: float) -> float | str:
    """MLflow's JSON convention for non-finite numbers."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def json_floats(values: np.ndarray) -> np.ndarray | list[float | str]:
    """A column for JSON: kept as numpy (fast path) unless it holds NaN or infinities."""
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return values
    return [json_float(v) for v in values.tolist()]


def read_arrow(body: bytes) -> tuple[pa.Table, dict[str, Any]]:
    """The table and metadata of an arrow_response body."""
    table = pa.ipc.open_stream(body).read_all()
    return table, orjson.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}"))


def split_series(
    table: pa.Table,
    runs: list[str],
    keys: list[str],
    per_rank: bool,
    column: Callable[[np.ndarray], Any] = json_floats,
) -> list[dict[str, Any]]:
    """A bucket_table cut into one dict per series where the series changes (no per-row Python);
    each bucket column passed through `column`."""
    if table.num_rows == 0:
        return []
    ids = [table.column(c).to_numpy() for c in ("run_no", "key_no", "series_rank")]
    changed = np.zeros(table.num_rows - 1, bool)
    for ids_column in ids:
        changed |= ids_column[1:] != ids_column[:-1]
    starts = [0, *(np.flatnonzero(changed) + 1).tolist()]
    columns = {c: table.column(c).to_numpy() for c in ["bucket", *SERIES_COLUMNS]}
    out = []
    for start, end in zip(starts, [*starts[1:], table.num_rows], strict=True):
        series: dict[str, Any] = {"run_id": runs[ids[0][start]], "key": keys[ids[1][start]]}
        if per_rank:
            series["rank"] = int(ids[2][start])
        series.update({name: column(col[start:end]) for name, col in columns.items()})
        out.append(series)
    return out
