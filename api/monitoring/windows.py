"""A served model version's production windows: requests and latency quantiles per window (or per
interval), read from migrations/011_monitoring.sql's tables."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.api.monitoring.drift import Served
from runstream.schemas.sketch import bucket_value

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
LATENCY = "latency_ms"
_AT = "if({every:Int64} > 0, intDiv(window_start, {every:Int64}) * {every:Int64}, window_start)"
_SERVED = (
    "model_name = {model:String} AND version = {version:Int64} AND environment = {env:String} "
    "AND window_start >= {start:Int64} AND window_start < {end:Int64}"
)


def windows(client: Client, served: Served) -> list[dict[str, Any]]:
    """Per window start (or interval): requests, and how many windows were logged in it."""
    rows = client.query(
        f"SELECT {_AT} AS at, sum(requests), count() FROM inference_windows FINAL WHERE {_SERVED} "
        "GROUP BY at ORDER BY at",
        parameters=served.parameters(),
    ).result_rows
    return [{"at": at, "requests": requests, "windows": n} for at, requests, n in rows]


def latencies(client: Client, served: Served) -> dict[int, dict[str, float]]:
    """Per window start (or interval): latency quantiles (ms, within 1%) where latencies were logged."""
    rows = client.query(
        f"SELECT {_AT} AS at, b.1 AS bucket, sum(b.2) FROM inference_features FINAL "
        f"ARRAY JOIN arrayZip(buckets, bucket_counts) AS b WHERE {_SERVED} AND feature = {{feature:String}} "
        "GROUP BY at, bucket ORDER BY at, bucket",
        parameters={**served.parameters(), "feature": LATENCY},
    ).result_rows
    counts: dict[int, list[tuple[int, int]]] = {}
    for at, bucket, n in rows:
        counts.setdefault(at, []).append((bucket, n))
    return {at: _quantiles(buckets) for at, buckets in counts.items()}


def _quantiles(buckets: list[tuple[int, int]]) -> dict[str, float]:
    total = sum(n for _, n in buckets)
    out, seen, wanted = {}, 0, sorted(QUANTILES.items(), key=lambda q: q[1])
    for bucket, n in buckets:
        seen += n
        while wanted and seen >= wanted[0][1] * total:
            out[wanted.pop(0)[0]] = bucket_value(bucket)
    return out
