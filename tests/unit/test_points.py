"""The projector's rollup and summary rows against a plain per-group computation, on points with
ties (one point logged twice at a step and time), NaN and infinities."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runstream.projector.points import Points
from runstream.store.tables import ROLLUP_BLOCK

VALUES = st.one_of(st.sampled_from([0.0, 1.0, -1.0, math.nan, math.inf, -math.inf]), st.floats(-10, 10))
POINT = st.tuples(
    st.integers(0, 1), st.integers(0, 1), st.integers(0, 1), st.integers(0, 200), st.integers(0, 2), VALUES
)  # run, key, rank, step, timestamp, value


def _points(rows: list[tuple[int, int, int, int, int, float]]) -> Points:
    run, key, rank, step, timestamp, value = (np.array(column) for column in zip(*rows, strict=True))
    n = len(rows)
    return Points(
        run=run.astype(np.int32),
        key=key.astype(np.int32),
        rank=rank.astype(np.uint32),
        node=np.zeros(n, np.int32),
        step=step.astype(np.int64),
        timestamp=timestamp.astype(np.int64),
        value=value.astype(np.float64),
        partition=np.zeros(n, np.uint32),
        offset=np.arange(n, dtype=np.int64),
        run_ids=["r0", "r1"],
        keys=["k0", "k1"],
        nodes=["n"],
    )


def _sortable(value: float) -> tuple[bool, float]:
    return (math.isnan(value), 0.0 if math.isnan(value) else value)  # NaN after every number, as sorted


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (and 0.0 to -0.0, as everywhere)."""
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b or (math.isnan(a) and math.isnan(b)))


@settings(max_examples=150, deadline=None)
@given(st.lists(POINT, min_size=1, max_size=300))
def test_rollup_and_summary_rows_equal_a_per_group_computation(rows):
    points = _points(rows)
    groups: dict[tuple[str, str, int, int], list[tuple[int, int, int, int, int, float]]] = defaultdict(list)
    for row in rows:
        groups[f"r{row[0]}", f"k{row[1]}", row[2], row[3] // ROLLUP_BLOCK].append(row)
    rollup = {(r["run_id"], r["key"], r["rank"], r["block"]): r for r in points.rollup_table().to_pylist()}
    assert set(rollup) == set(groups)
    for group, members in groups.items():
        got = rollup[group]
        # (step, timestamp, rank, value) of the least and greatest position
        position = [(step, ts, rank, _sortable(v), v) for _, _, rank, step, ts, v in members]
        for column, (step, ts, rank, _, v) in (("first_point", min(position)), ("last_point", max(position))):
            assert _same(tuple(got[column].values()), (step, ts, rank, v))
        low = min((math.inf if math.isnan(v) else v, step) for _, _, _, step, _, v in members)
        high = max((-math.inf if math.isnan(v) else v, step) for _, _, _, step, _, v in members)
        assert tuple(got["low_point"].values()) == low and tuple(got["high_point"].values()) == high
        numbers = [v for *_, v in members if not math.isnan(v)]
        with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as the projector's sum
            total = float(np.sum(numbers)) if numbers else 0.0  # summed in another order: equal to rounding
        assert _same(got["total"], total) or math.isclose(got["total"], total, rel_tol=1e-9, abs_tol=1e-9)
        assert (got["finite"], got["points"]) == (len(numbers), len(members))

    summary = {(r["run_id"], r["key"]): r for r in points.summary_table().to_pylist()}
    by_run: dict[tuple[str, str], list[tuple[int, int, int, int, int, float]]] = defaultdict(list)
    for row in rows:
        by_run[f"r{row[0]}", f"k{row[1]}"].append(row)
    assert set(summary) == set(by_run)
    for run_key, members in by_run.items():
        got = summary[run_key]
        latest = max((step, ts, _sortable(v), v) for _, _, _, step, ts, v in members)
        assert _same(tuple(got["latest"].values()), (latest[0], latest[1], latest[3]))
        assert _same(got["min_value"], float(np.fmin.reduce([v for *_, v in members])))
        assert _same(got["max_value"], float(np.fmax.reduce([v for *_, v in members])))
        assert got["points"] == len(members)
