"""JSON bodies written with orjson (numpy arrays included, no per-element Python on large series)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
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
