"""Every read runs under the store's ReadLimits: a query over them is stopped by ClickHouse and
answered 429 RESOURCE_EXHAUSTED with what to change (native and MLflow API), and the server goes on
answering. On both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from runstream.base.clickhouse import ClickHouse, ReadLimits
from runstream.server.app import build_app

RUN = "0123456789abcdef0123456789abcdef"
POINTS = 3_000_000


@pytest.fixture
def heavy(store: ClickHouse) -> ClickHouse:
    """One run of POINTS points of "loss", written straight into the points table, merged into one
    part: the read that needs least memory (no parts to merge for FINAL), whenever merges ran."""
    store.client.command(
        "INSERT INTO metrics (run_id, key, step, timestamp, rank, value, node, src_partition, src_offset) "
        f"SELECT '{RUN}', 'loss', number, number, 0, number / 7, 'n', 0, number FROM numbers({POINTS})"
    )
    store.client.command("OPTIMIZE TABLE metrics FINAL")
    return store


def test_a_read_over_the_memory_limit_is_a_429_and_the_server_keeps_answering(heavy: ClickHouse) -> None:
    # 1M points stream through ClickHouse in ~6 MiB; its read buffers alone take a few MiB, so under
    # this limit no read fits: what is checked is the refusal, then that the server goes on.
    tiny = heavy.limited(ReadLimits(seconds=30, memory_bytes=1024**2))
    http = TestClient(build_app("api", store=tiny))
    whole = {"key": "loss", "max_results": 1_000_000}
    for path, params in [
        (f"/api/v1/runs/{RUN}/metric-history", whole),
        ("/api/2.0/mlflow/metrics/get-history", {"run_id": RUN, "metric_key": "loss", "max_results": 1_000_000}),
    ]:
        refused = http.get(path, params=params)
        assert refused.status_code == 429, refused.text[:500]
        body = refused.json()
        assert body["error_code"] == "RESOURCE_EXHAUSTED"
        assert "memory limit" in body["message"] and "--read-max-memory" in body["message"]
        assert "ask for less" in body["message"]
    assert http.get("/health").status_code == 200
    unlimited = TestClient(build_app("api", store=heavy))  # the same read fits the default limits
    assert len(unlimited.get(f"/api/v1/runs/{RUN}/metric-history", params=whole).json()["steps"]) == 1_000_000


def test_a_read_over_the_time_limit_is_a_429(heavy: ClickHouse) -> None:
    """Series buckets over every point (a scan of 3M points) under a 1 ms limit: ClickHouse stops it."""
    http = TestClient(build_app("api", store=heavy.limited(ReadLimits(seconds=0.001))))
    refused = http.post("/api/v1/series", json={"run_ids": [RUN], "keys": ["loss"], "max_points": 1000})
    assert refused.status_code == 429, refused.text[:500]
    assert refused.json()["error_code"] == "RESOURCE_EXHAUSTED" and "--read-timeout" in refused.json()["message"]
    assert http.get("/health").status_code == 200
