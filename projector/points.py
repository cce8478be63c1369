"""A batch's metric points as columns, and what the projector derives from them before inserting:
the 64-step rollup and the per-key summary, aggregated with numpy here rather than by materialised
views in ClickHouse (which would halve the insert rate: the server's insert is the pipeline's
bottleneck, the projector's CPU is mostly idle).

Every derived row carries the log position of its newest point (src_partition, src_offset): a
restarted projector skips points a table already holds, so sums (points, total) never double.
A run's events share a partition, so a row never mixes partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from runstream.store.tables import METRIC_TABLES, ROLLUP_BLOCK


def _catalogued(table: str, columns: dict[str, pa.Array | np.ndarray]) -> pa.Table:
    """The columns in the catalog's order (store/tables.py); a column built but not listed, or listed
    but not built, is a KeyError here rather than a surprise in the insert."""
    names = METRIC_TABLES[table]
    if set(columns) != set(names):
        raise KeyError(f"{table}: built {sorted(columns)}, catalogued {sorted(names)}")
    return pa.table({name: columns[name] for name in names})


@dataclass
class Points:
    run: np.ndarray  # int32 index into run_ids
    key: np.ndarray  # int32 index into keys
    rank: np.ndarray  # uint32
    node: np.ndarray  # int32 index into nodes
    step: np.ndarray  # int64
    timestamp: np.ndarray  # int64
    value: np.ndarray  # float64
    partition: np.ndarray  # uint32
    offset: np.ndarray  # int64
    run_ids: list[str]
    keys: list[str]
    nodes: list[str]

    def __len__(self) -> int:
        return len(self.value)

    def _names(self, indices: np.ndarray, names: list[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string()))

    def metrics_table(self) -> pa.Table:
        return _catalogued(
            "metrics",
            {
                "run_id": self._names(self.run, self.run_ids),
                "key": self._names(self.key, self.keys),
                "step": self.step,
                "timestamp": self.timestamp,
                "rank": self.rank,
                "value": self.value,
                "node": self._names(self.node, self.nodes),
                "src_partition": self.partition,
                "src_offset": self.offset,
            },
        )

    def _order(self, *columns: np.ndarray) -> np.ndarray:
        """np.lexsort's order by `columns` (the last one first), then by value. The value is sorted
        only where two points tie on every column (one point logged twice at a step and time): values
        are noise-like and costly to sort, the other columns come nearly sorted."""
        order = np.lexsort(columns)
        tied = np.ones(max(len(order) - 1, 0), bool)
        for column in columns:
            ordered = column[order]
            tied &= ordered[1:] == ordered[:-1]
        return np.lexsort((self.value, *columns)) if tied.any() else order

    def _groups(self, order: np.ndarray, *group_by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For rows sorted by `order`: where each group (equal values of group_by) starts, and each
        row's group number."""
        changed = np.zeros(len(order), bool)
        changed[0] = True
        for column in group_by:
            sorted_column = column[order]
            changed[1:] |= sorted_column[1:] != sorted_column[:-1]
        return np.flatnonzero(changed), np.cumsum(changed) - 1

    def _source(self, order: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "src_partition": self.partition[order][starts],
            "src_offset": np.maximum.reduceat(self.offset[order], starts),
        }

    def rollup_table(self) -> pa.Table:
        block = self.step // ROLLUP_BLOCK
        order = self._order(self.timestamp, self.step, self.rank, self.key, self.run)
        starts, group = self._groups(order, self.run, self.key, self.rank, block)
        ends = np.r_[starts[1:], len(order)] - 1
        s = {c: getattr(self, c)[order] for c in ("step", "timestamp", "rank", "value")}
        nan = np.isnan(s["value"])

        def extreme(values: np.ndarray, pick: np.ufunc, worst_step: int) -> tuple[np.ndarray, np.ndarray]:
            # (value, step) of each group's least (pick = minimum) or greatest value; ties go to the
            # least or greatest step, the same way. No sort: a reduction, then the steps holding it.
            best = pick.reduceat(values, starts)
            steps = np.where(values == best[group], s["step"], worst_step)
            return best, pick.reduceat(steps, starts)

        int64 = np.iinfo(np.int64)
        low_value, low_step = extreme(np.where(nan, np.inf, s["value"]), np.minimum, int64.max)
        high_value, high_step = extreme(np.where(nan, -np.inf, s["value"]), np.maximum, int64.min)

        def point(at: np.ndarray) -> pa.StructArray:
            return pa.StructArray.from_arrays(
                [s["step"][at], s["timestamp"][at], s["rank"][at], s["value"][at]], names=["0", "1", "2", "3"]
            )

        with np.errstate(invalid="ignore"):  # +inf and -inf in one bucket: the sum (and mean) is NaN
            total = np.add.reduceat(np.where(nan, 0.0, s["value"]), starts)
        return _catalogued(
            "metric_rollup",
            {
                "run_id": self._names(self.run[order][starts], self.run_ids),
                "key": self._names(self.key[order][starts], self.keys),
                "rank": s["rank"][starts],
                "block": block[order][starts],
                "first_point": point(starts),
                "last_point": point(ends),
                "low_point": pa.StructArray.from_arrays([low_value, low_step], names=["0", "1"]),
                "high_point": pa.StructArray.from_arrays([high_value, high_step], names=["0", "1"]),
                "total": total,
                "finite": np.add.reduceat((~nan).astype(np.uint64), starts),
                "points": np.diff(np.r_[starts, len(order)]).astype(np.uint64),
                **self._source(order, starts),
            },
        )

    def summary_table(self) -> pa.Table:
        order = self._order(self.timestamp, self.step, self.run, self.key)
        starts, _ = self._groups(order, self.key, self.run)
        last = np.r_[starts[1:], len(order)] - 1  # the greatest (step, timestamp, value): MLflow's latest
        value = self.value[order]
        return _catalogued(
            "metric_summary",
            {
                "key": self._names(self.key[order][starts], self.keys),
                "run_id": self._names(self.run[order][starts], self.run_ids),
                "latest": pa.StructArray.from_arrays(
                    [self.step[order][last], self.timestamp[order][last], value[last]], names=["0", "1", "2"]
                ),
                "min_value": np.fmin.reduceat(value, starts),  # fmin/fmax skip NaN, as min/max do in SQL
                "max_value": np.fmax.reduceat(value, starts),
                "points": np.diff(np.r_[starts, len(order)]).astype(np.uint64),
                **self._source(order, starts),
            },
        )
