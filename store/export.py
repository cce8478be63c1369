"""`runstream export`: runs, params, tags and every metric point as Parquet, for pandas, polars or
DuckDB (each reads a folder of parts as one table: `pd.read_parquet("out/metrics")`).

The runs chosen are fixed when an export starts (`out/runs.json`); each table is written in parts of
RUNS_PER_PART runs, each part whole (written beside, then renamed), so an interrupted export started
again writes only the parts still missing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from runstream.base.clickhouse import ClickHouse

RUNS_PER_PART = 500
TABLES = {
    "runs": "SELECT run_id, experiment_id, run_name, user_id, start_time, end_time, status, parent_run_id, "
    "artifact_uri, deleted = 1 AS deleted FROM runs_view WHERE run_id IN {ids:Array(String)} ORDER BY run_id",
    "params": "SELECT run_id, key, value FROM run_params_view WHERE run_id IN {ids:Array(String)} ORDER BY run_id, key",
    "tags": "SELECT run_id, key, value FROM run_tags_view WHERE run_id IN {ids:Array(String)} ORDER BY run_id, key",
    "metrics": "SELECT run_id, toString(key) AS key, step, timestamp, rank, value FROM metrics FINAL "
    "WHERE run_id IN {ids:Array(String)} ORDER BY run_id, key, rank, step, timestamp",
}
Progress = Callable[[int, int, int], None]
"""Told (parts written, parts in the export, metric points written) as it goes."""


class NothingToExport(LookupError):
    pass


def choose_runs(store: ClickHouse, experiment: str | None, run_id: str | None) -> list[str]:
    """One run, the runs of one experiment (by name or id), or every run; deleted ones too."""
    client = store.client
    if run_id is not None:
        rows = client.query("SELECT run_id FROM runs_view WHERE run_id = {r:String}", parameters={"r": run_id})
    elif experiment is not None:
        rows = client.query(
            "SELECT run_id FROM runs_view WHERE experiment_id IN (SELECT experiment_id FROM experiments_view "
            "WHERE name = {e:String} OR experiment_id = {e:String}) ORDER BY run_id",
            parameters={"e": experiment},
        )
    else:
        rows = client.query("SELECT run_id FROM runs_view ORDER BY run_id")
    found = [str(row[0]) for row in rows.result_rows]
    if not found:
        what = f"run {run_id}" if run_id else f"experiment {experiment!r}" if experiment else "this database"
        raise NothingToExport(f"no runs in {what}")
    return found


def export(
    store: ClickHouse, out: Path, choose: Callable[[], list[str]], progress: Progress = lambda *_: None
) -> dict[str, int]:
    """Writes each table's parts that are missing under `out`; returns the rows written per table."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = out / "runs.json"
    if not chosen.exists():
        chosen.write_text(json.dumps(choose()))
    run_ids: list[str] = json.loads(chosen.read_text())
    chunks = [run_ids[i : i + RUNS_PER_PART] for i in range(0, len(run_ids), RUNS_PER_PART)]
    total, done, points = len(chunks) * len(TABLES), 0, 0
    written = dict.fromkeys(TABLES, 0)
    for name, sql in TABLES.items():
        folder = out / name
        folder.mkdir(exist_ok=True)
        for number, ids in enumerate(chunks):
            part = folder / f"part-{number:05d}.parquet"
            if not part.exists():
                table = store.client.query_arrow(sql, parameters={"ids": ids})
                tmp = folder / f".{part.name}.tmp"  # readers of the folder skip dot files
                pq.write_table(table, tmp, compression="zstd")
                tmp.replace(part)
                written[name] += table.num_rows
                points += table.num_rows if name == "metrics" else 0
            done += 1
            progress(done, total, points)
    return written
