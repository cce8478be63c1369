"""Bytes on disk per metric point in `runstream serve`'s stores, for two ways of logging a loss curve.

    .venv/bin/python -m bench.disk [--runs 16] [--keys 4] [--steps 156250]

- Curves: the noisy decaying loss of bench/producers.py (computed in float32, logged as float64),
  `--runs` x `--keys` series of `--steps` steps, logged through the SDK (`log_metric_arrays`, 10,000
  points a call) either with one clock reading per call ("chunked", as bench/scale.py logs) or with a
  clock that advances 80-400 ms a step ("per step", a training loop's own timing: what timestamps cost).
- Stores: the embedded log (its SQLite file) and the embedded ClickHouse, merged (OPTIMIZE FINAL: the
  state a quiet server settles in): the points table, its 64-step rollup and the per-key summary. Before
  and after migration 012's codecs: the same rows copied into the points table as it was before it, and
  the time to read them all back into buckets from each (warm).
Kafka's segments and a ClickHouse server's figures are bench/scale.py's (the same engine and tables).
Results: bench/results/disk.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import runstream
from bench.report import run_and_save
from runstream.base.clickhouse import ClickHouse
from runstream.projector.dedup import METRIC_TABLES
from runstream.server.roles import embedded_clickhouse, embedded_log
from tests.integration.roles import Role
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "disk.json"
CHUNK = 10_000
# The points table's codecs before migration 012 (LZ4 is the engine's default).
BEFORE_012 = {"value": "Float64 CODEC(LZ4)", "step": "Int64 CODEC(Delta(8), ZSTD(1))"}


def _loss(steps: np.ndarray, key: int, rng: np.random.Generator) -> np.ndarray:
    """bench/producers.py's loss, decaying at a different pace per key."""
    loss = 2.0 * np.exp(-steps / 50_000 * (key + 1)) + 0.1 + rng.normal(0.0, 0.01, len(steps))
    return loss.astype(np.float32).astype(np.float64)


def log_curves(url: str, args: argparse.Namespace, per_step_clock: bool) -> str:
    """Logs every series through the SDK; the last consistency token."""
    rng = np.random.default_rng(1)
    token = ""
    for r in range(args.runs):
        run = runstream.start_run(experiment="disk", tracking_uri=url)
        clock = 1_760_000_000_000 + np.cumsum(rng.integers(80, 400, args.steps))
        for first in range(0, args.steps, CHUNK):
            steps = np.arange(first, min(first + CHUNK, args.steps), dtype=np.int64)
            for key in range(args.keys):
                stamps = clock[steps] if per_step_clock else None
                run.log_metric_arrays(f"loss_{key}", _loss(steps, key, rng), steps, stamps)
        token = run.end()
        print(f"  run {r + 1}/{args.runs} logged", flush=True)
    return token


def wait_applied(url: str, token: str) -> None:
    while httpx.get(f"{url}/api/v1/experiments", params={"after": token}, timeout=60).status_code == 503:
        pass  # each call waits 10 s before answering 503


def _parts(store: ClickHouse, tables: list[str]) -> dict[str, int]:
    rows = store.client.query(
        "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND active "
        "AND table IN {t:Array(String)} GROUP BY table",
        parameters={"t": tables},
    ).result_rows
    return {str(t): int(b) for t, b in rows}


def measure(data_dir: Path, points: int) -> dict[str, Any]:
    """The stores' bytes per point, once serve has stopped (the log's file and the engine are closed)."""
    log_file = embedded_log(data_dir)
    log_bytes = sum(p.stat().st_size for p in log_file.parent.glob(log_file.name + "*"))
    store = ClickHouse(embedded_clickhouse(data_dir))
    client = store.client
    counted = int(client.query("SELECT count() FROM metrics FINAL").result_rows[0][0])
    if counted != points:
        raise RuntimeError(f"{counted} points in ClickHouse, {points} logged")
    client.command("CREATE TABLE metrics_before_012 AS metrics")
    for column, kind in BEFORE_012.items():
        client.command(f"ALTER TABLE metrics_before_012 MODIFY COLUMN {column} {kind}")
    client.command("INSERT INTO metrics_before_012 SELECT * FROM metrics")
    tables = [*METRIC_TABLES, "metrics_before_012"]
    for table in tables:
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    sizes = _parts(store, tables)
    columns = {
        str(name): int(size)
        for name, size in client.query(
            "SELECT table || '.' || name, sum(data_compressed_bytes) FROM system.columns "
            "WHERE database = currentDatabase() AND table IN ('metrics', 'metrics_before_012') "
            "AND name IN ('value', 'step', 'timestamp') GROUP BY table, name"
        ).result_rows
    }
    per_point = {t: round(b / points, 2) for t, b in sizes.items()}
    reads = {
        table: _read_ms(store, table) for table in ("metrics_before_012", "metrics", "metrics_before_012", "metrics")
    }
    return {
        "points": points,
        "embedded_log_bytes_per_point": round(log_bytes / points, 2),
        "clickhouse_bytes_per_point": per_point,
        "clickhouse_metric_tables_bytes_per_point": round(sum(sizes[t] for t in METRIC_TABLES) / points, 2),
        "points_table_columns_bytes_per_point": {k: round(v / points, 2) for k, v in sorted(columns.items())},
        "read_every_point_into_buckets_p50_ms": reads,
    }


def _read_ms(store: ClickHouse, table: str, reps: int = 7) -> float:
    """p50 of reading every point of the table into buckets of 1,000 steps per series, as history and
    compare read them (first, last, min, max, mean per bucket): what the codecs cost to decode."""
    took = []
    for _ in range(reps):
        started = time.perf_counter()
        store.client.query(
            "SELECT run_id, key, intDiv(step, 1000) AS bucket, argMin(value, step), argMax(value, step), min(value), "
            f"max(value), avg(value), count() FROM {table} GROUP BY run_id, key, bucket"
        )
        took.append(time.perf_counter() - started)
    return round(statistics.median(took) * 1000, 1)


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": vars(args), "uptime_before": os.popen("uptime").read().strip()}
    points = args.runs * args.keys * args.steps
    for curve, per_step in (("chunked", False), ("per_step", True)):
        data_dir = workdir / curve
        port = free_port()
        serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(data_dir))
        url = f"http://127.0.0.1:{port}"
        print(f"{curve}: logging {points:,} points ...", flush=True)
        try:
            started = time.monotonic()
            wait_applied(url, log_curves(url, args, per_step))
            logged_s = time.monotonic() - started
        finally:
            serve.stop()
        results[curve] = {**measure(data_dir, points), "logged_until_queryable_s": round(logged_s, 1)}
        print(f"  {results[curve]}", flush=True)
    results["uptime_after"] = os.popen("uptime").read().strip()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=16, help="runs")
    parser.add_argument("--keys", type=int, default=4, help="loss series per run")
    parser.add_argument("--steps", type=int, default=156_250, help="steps per series")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    run_and_save("runstream-bench-disk-", RESULTS, lambda workdir: run_bench(args, workdir), args.keep)


if __name__ == "__main__":
    main()
