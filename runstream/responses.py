"""Response bodies: JSON written with orjson (numpy arrays included, no per-element Python on large
series), or, for clients that accept it, columns as an Arrow IPC stream (no text at all)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from fastapi.responses import Response


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


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


ARROW_STREAM = "application/vnd.apache.arrow.stream"
_METADATA_KEY = b"runstream"


def accepts_arrow(accept: str | None) -> bool:
    return accept is not None and ARROW_STREAM in accept


def arrow_response(table: pa.Table, metadata: dict[str, Any]) -> Response:
    """The columns as one Arrow IPC stream; what the JSON body carries beside them rides along as
    JSON in the schema metadata."""
    table = table.replace_schema_metadata({_METADATA_KEY: orjson.dumps(metadata)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)


def read_arrow(body: bytes) -> tuple[pa.Table, dict[str, Any]]:
    """The table and metadata of an arrow_response body."""
    table = pa.ipc.open_stream(body).read_all()
    return table, orjson.loads((table.schema.metadata or {}).get(_METADATA_KEY, b"{}"))
