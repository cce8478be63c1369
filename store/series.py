"""Metric series for charts: downsampled history of one run, comparisons of many runs on one x grid,
and aggregates across groups of runs. One bucketing rule serves all three: the x range [lo, hi] is
cut into buckets of equal width `w`, bucket = (x - lo) div w.

Per bucket a series carries the first and last point (by x; among points at the same x, any one —
a tuple tie-break made the query 6x slower), the min and max envelope with the x where each occurs,
the mean and the count, so a chart keeps spikes and the series keeps its very first and last point.
Metric rows are stored once (see the migrations), so no FINAL is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from runstream.store.id_sets import query_by_ids
from runstream.store.tables import ROLLUP_BLOCK

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

XAxis = Literal["step", "time", "relative"]
MAX_BUCKETS = 10_000
MAX_RUNS = 1_000


@dataclass(frozen=True)
class Grid:
    x_axis: XAxis
    lo: int
    hi: int
    width: int
    points: int  # points in range, before bucketing
    rollup: bool = False  # buckets are whole rollup blocks: read metric_rollup, not the points

    def as_dict(self) -> dict[str, Any]:
        return {"x_axis": self.x_axis, "x_min": self.lo, "x_max": self.hi, "bucket_width": self.width}


class Selection:
    """Which points: runs by keys, one rank or all, an x range. Builds the shared SQL pieces."""

    def __init__(
        self,
        client: Client,
        run_ids: list[str],
        keys: list[str],
        x_axis: XAxis,
        rank: int | None = None,
        x_min: int | None = None,
        x_max: int | None = None,
    ) -> None:
        self.client = client
        self.x_axis = x_axis
        # Rollup blocks are whole ranges of steps: usable when the range has no cut inside a block.
        self.rollup_ok = x_axis == "step" and x_min is None and x_max is None
        self.params: dict[str, Any] = {"runs": run_ids, "keys": keys}
        where = ["run_id IN {runs:Array(String)}", "key IN {keys:Array(String)}"]
        if rank is not None:
            where.append("rank = {rank:UInt32}")
            self.params["rank"] = rank
        self.x = {"step": "step", "time": "timestamp"}.get(x_axis, "")
        if x_axis == "relative":  # ms since the run's start
            self.params["starts"] = self._start_times(run_ids)
            self.x = "(timestamp - transform(run_id, {runs:Array(String)}, {starts:Array(Int64)}, 0))"
        if x_min is not None:
            where.append(f"{self.x} >= {{x_min:Int64}}")
            self.params["x_min"] = x_min
        if x_max is not None:
            where.append(f"{self.x} <= {{x_max:Int64}}")
            self.params["x_max"] = x_max
        self.where = " AND ".join(where)

    def _start_times(self, run_ids: list[str]) -> list[int]:
        rows = self.client.query(
            "SELECT run_id, start_time FROM runs_view WHERE run_id IN {runs:Array(String)}",
            parameters={"runs": run_ids},
        ).result_rows
        starts = {run_id: start for run_id, start in rows}
        return [int(starts.get(run_id) or 0) for run_id in run_ids]

    def source(self) -> str:
        """The selected points, with their x, as a subquery."""
        return f"(SELECT *, {self.x} AS x FROM metrics WHERE {self.where})"

    def bucket_params(self, grid: Grid) -> dict[str, Any]:
        return {**self.params, "lo": grid.lo, "width": grid.width, "run_no": list(range(len(self.params["runs"])))}

    def grid(self, buckets: int) -> Grid:
        if self.rollup_ok:
            # The rollup knows the step range and the count exactly, in 64 times fewer rows.
            lo, hi, count = self.client.query(
                f"SELECT min(first_point.1), max(last_point.1), sum(points) FROM metric_rollup WHERE {self.where}",
                parameters=self.params,
            ).result_rows[0]
            # Only for wide buckets: rounding the width up to whole blocks then costs little resolution.
            if count and (hi - lo + 1) >= buckets * ROLLUP_BLOCK * 8:
                return self._rollup_grid(int(lo), int(hi), int(count), buckets)
        else:
            lo, hi, count = self.client.query(
                f"SELECT min({self.x}), max({self.x}), count() FROM metrics WHERE {self.where}",
                parameters=self.params,
            ).result_rows[0]
        lo, hi = (int(lo), int(hi)) if count else (0, 0)
        return Grid(self.x_axis, lo, hi, max(1, math.ceil((hi - lo + 1) / buckets)), int(count))

    def _rollup_grid(self, lo: int, hi: int, count: int, buckets: int) -> Grid:
        origin = lo // ROLLUP_BLOCK * ROLLUP_BLOCK
        width = ROLLUP_BLOCK * math.ceil((hi - origin + 1) / buckets / ROLLUP_BLOCK)
        return Grid(self.x_axis, origin, hi, width, count, rollup=True)

    def without_expired_points(self, grid: Grid, buckets: int, table: pa.Table) -> Grid | None:
        """The rollup's grid where the retention policy (projector/retention.py) dropped the first
        points of a range the rollup still covers, from what the points' buckets answered: their
        first x comes after the rollup's (points are dropped oldest first, nothing else removes a
        step). None where the points answered whole."""
        if not self.rollup_ok or grid.rollup or not grid.points:
            return None
        first = pc.min(table.column("x_first")).as_py() if table.num_rows else None
        if first is not None and first <= grid.lo:
            return None
        return self._rollup_grid(grid.lo, grid.hi, grid.points, buckets)


_BUCKET_COLUMNS = """
    min(x) AS x_first, argMin(value, x) AS first,
    max(x) AS x_last, argMax(value, x) AS last,
    min(value) AS min, argMin(x, value) AS x_of_min,
    max(value) AS max, argMax(x, value) AS x_of_max,
    avgIf(value, NOT isNaN(value)) AS mean, count() AS count"""
BUCKET = "intDiv(x - {lo:Int64}, {width:Int64})"
# A run as its position in the request: grouping and sorting on an integer is much cheaper than on
# the run id's string (100 runs x 10,000 points: aggregates 66-71 -> 58-59 ms on the server).
_RUN_NO = "transform(run_id, {runs:Array(String)}, {run_no:Array(UInt32)}, 0)"
# Tuple min/max is several times slower than single-column aggregates: read the elements apart.
_ROLLUP_COLUMNS = """
    min(first_point.1) AS x_first, argMin(first_point.4, first_point.1) AS first,
    max(last_point.1) AS x_last, argMax(last_point.4, last_point.1) AS last,
    if(sum(finite) = 0, nan, min(low_point.1)) AS min, argMin(low_point.2, low_point.1) AS x_of_min,
    if(sum(finite) = 0, nan, max(high_point.1)) AS max, argMax(high_point.2, high_point.1) AS x_of_max,
    sum(total) / sum(finite) AS mean, sum(points) AS count"""


def _bucket_source(selection: Selection, grid: Grid) -> tuple[str, str]:
    """The bucket expression and the FROM source: rollup blocks, or the points themselves."""
    if grid.rollup:
        return (
            f"intDiv(block * {ROLLUP_BLOCK} - {{lo:Int64}}, {{width:Int64}})",
            f"metric_rollup WHERE {selection.where}",
        )
    return BUCKET, selection.source()


def bucket_table(selection: Selection, grid: Grid, per_rank: bool) -> pa.Table:
    """Bucket rows of every series (run_no, key_no: positions in the request; series_rank), ordered
    by series then bucket."""
    rank = "rank" if per_rank else "toUInt32(0)"
    bucket, source = _bucket_source(selection, grid)
    columns = _ROLLUP_COLUMNS if grid.rollup else _BUCKET_COLUMNS
    # Keys as their positions too, so the order asked for comes out directly. key_no is cast: over
    # the LowCardinality key, transform answers LowCardinality(UInt32), which moves the GROUP BY onto
    # a slower hash method (100 runs x 10,000 points: 146 -> 100 ms on the server).
    return selection.client.query_arrow(
        f"SELECT {_RUN_NO} AS run_no, "
        "CAST(transform(key, {keys:Array(String)}, {key_no:Array(UInt32)}, 0) AS UInt32) AS key_no, "
        f"{rank} AS series_rank, {bucket} AS bucket, {columns} FROM {source} "
        "GROUP BY run_no, key_no, series_rank, bucket ORDER BY run_no, key_no, series_rank, bucket",
        parameters={**selection.bucket_params(grid), "key_no": list(range(len(selection.params["keys"])))},
    )


def group_aggregates(selection: Selection, grid: Grid, group_of_run: list[int]) -> pa.Table:
    """Per group by bucket, statistics across runs of each run's mean in the bucket: the mean±std band
    over seeds. std is the sample standard deviation (n-1); median interpolates like numpy's."""
    bucket, source = _bucket_source(selection, grid)
    mean = "sum(total) / sum(finite)" if grid.rollup else "avgIf(value, NOT isNaN(value))"
    return selection.client.query_arrow(
        "SELECT {groups:Array(UInt32)}[run_no + 1] AS group_index, bucket, "
        "avg(v) AS mean, stddevSamp(v) AS std, min(v) AS min, max(v) AS max, "
        "quantileExactInclusive(0.5)(v) AS median, count() AS runs "
        f"FROM (SELECT {_RUN_NO} AS run_no, {bucket} AS bucket, {mean} AS v FROM {source} GROUP BY run_no, bucket) "
        "WHERE NOT isNaN(v) GROUP BY group_index, bucket ORDER BY group_index, bucket",
        parameters={**selection.bucket_params(grid), "groups": group_of_run},
    )


def summaries(client: Client, run_ids: list[str], keys: list[str] | None) -> list[dict[str, Any]]:
    """The runs table: per run by key the latest point (MLflow's rule), min, max and count."""
    key_filter = "" if keys is None else " AND key IN {keys:Array(String)}"
    result = query_by_ids(
        client,
        "SELECT run_id, key, max(latest) AS l, min(min_value), max(max_value), sum(points) "
        f"FROM metric_summary WHERE run_id IN {{runs:Array(String)}}{key_filter} GROUP BY run_id, key "
        "ORDER BY run_id, key",
        run_ids,
        parameters={"keys": keys or []},
        name="runs",
    )
    return [
        {"run_id": r, "key": k, "last": v, "last_step": s, "last_timestamp": t, "min": lo, "max": hi, "count": n}
        for r, k, (s, t, v), lo, hi, n in result.result_rows
    ]
