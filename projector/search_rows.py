"""The search table's rows (migrations/014): once a batch's state rows are in, every run the batch
touched is written again, whole, from the state tables (the view run_search_source), so a search
reads one row per run. A row read after a write holds it; of two rows of a run the later read wins
(its version is when it was read), so lanes writing one run at once leave its newest state. A retry
writes the rows again, which changes nothing, so the statement carries no insert token."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from runstream.projector.registry_rows import Rows
from runstream.store.id_sets import command_by_ids

_REFRESH = "INSERT INTO run_search SELECT * FROM run_search_source WHERE run_id IN {ids:Array(String)}"
# The state tables' column holding the run, by table (param_state and tag_state are key-first).
_RUN_COLUMN = {"run_state": 0, "param_state": 1, "tag_state": 1}


def touched_runs(state: Rows, metric_tables: dict[str, pa.Table]) -> list[str]:
    """The runs whose searchable state a batch changes: its run, param and tag rows, and the runs
    whose latest metrics it writes."""
    runs = {row[_RUN_COLUMN[table]] for table, rows in state.items() for row in rows}
    summary = metric_tables.get("metric_summary")
    if summary is not None:
        runs.update(pc.unique(summary.column("run_id")).to_pylist())
    return sorted(runs)


def write_search_rows(client: Client, run_ids: list[str], settings: dict[str, Any]) -> None:
    """Writes these runs' rows again, from what the state tables hold now."""
    if run_ids:
        command_by_ids(client, _REFRESH, run_ids, settings=settings)
