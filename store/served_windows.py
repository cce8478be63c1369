"""A served model version's production windows: requests and latency quantiles per window (or per
interval), read from migrations/011_monitoring.sql's tables."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.schemas.sketch import bucket_value
from runstream.store.drift import SERVED_AT, SERVED_WHERE, Served

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
LATENCY = "latency_ms"


def windows(client: Client, served: Served) -> list[dict[str, Any]]:
    """Per window start (or interval): requests, and how many windows were logged in it."""
    rows = client.query(
        f"SELECT {SERVED_AT} AS at, sum(requests), count() FROM inference_windows FINAL WHERE {SERVED_WHERE} "
        "GROUP BY at ORDER BY at",
        parameters=served.parameters(),
    ).result_rows
    return [{"at": at, "requests": requests, "windows": n} for at, requests, n in rows]


def latencies(client: Client, served: Served) -> dict[int, dict[str, float]]:
    """Per window start (or interval): latency quantiles (ms, within 1%) where latencies were logged."""
    rows = client.query(
        f"SELECT {SERVED_AT} AS at, sumMap(buckets, bucket_counts) FROM inference_features FINAL "
        f"WHERE {SERVED_WHERE} AND feature = {{feature:String}} GROUP BY at",
        parameters={**served.parameters(), "feature": LATENCY},
    ).result_rows
    return {at: _quantiles(list(zip(*counts, strict=True))) for at, counts in rows}


def _quantiles(buckets: list[tuple[int, int]]) -> dict[str, float]:
    total = sum(n for _, n in buckets)
    out, seen, wanted = {}, 0, sorted(QUANTILES.items(), key=lambda q: q[1])
    for bucket, n in buckets:
        seen += n
        while wanted and seen >= wanted[0][1] * total:
            out[wanted.pop(0)[0]] = bucket_value(bucket)
    return out


def previous_window(client: Client, served: Served) -> int | None:
    """The start of the window served before this one, if any."""
    rows = client.query(
        "SELECT max(window_start), count() FROM inference_windows WHERE model_name = {model:String} "
        "AND version = {version:Int64} AND environment = {env:String} AND window_start < {start:Int64}",
        parameters=served.parameters(),
    ).result_rows
    return int(rows[0][0]) if rows and rows[0][1] else None
