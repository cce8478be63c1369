"""The data bench/queries.py loads into runstream and into MLflow: the same runs, ids, params, tags and
points on both sides, all derived from the run's index (no randomness, so any chunk can be made alone).

- experiment "bench-history": run "big" (one key, `big_points` points), run "raw" (`raw_points`), and
  `compare_runs` runs "cmp-i" of `compare_points` points with params lr (4 values) and seed;
- experiment "bench-search": `search_runs` runs, each with 5 params, 3 tags and 3 metrics of
  `search_points` points (the last point is the run's latest value).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

HISTORY_EXPERIMENT = "bench-history"
SEARCH_EXPERIMENT = "bench-search"
KEY = "loss"
LRS = ["0.1", "0.01", "0.001", "0.0001"]
T0 = 1_700_000_000_000  # ms
SEARCH_FILTER = "metrics.acc > 0.5 AND params.lr = '0.01'"
SEARCH_ORDER = ["metrics.acc DESC"]
SEARCH_RESULTS = 100
GROUP_BY = "params.lr"


@dataclass(frozen=True)
class Sizes:
    big_points: int = 10_000_000
    raw_points: int = 1_000_000
    compare_runs: int = 100
    compare_points: int = 10_000
    search_runs: int = 100_000
    search_points: int = 3
    buckets: int = 1_000


@dataclass(frozen=True)
class HistoryRun:
    name: str
    index: int  # makes the values and the time offset of its points
    points: int
    params: dict[str, str]

    @property
    def run_id(self) -> str:
        return run_id(self.name)

    @property
    def start_ms(self) -> int:
        return T0 + self.index * 100_000_000

    def chunk(self, first: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """values, steps, timestamps of points [first, first + n)."""
        steps = np.arange(first, first + n, dtype=np.int64)
        values = (1.0 + 0.05 * np.sin(0.01 * steps + self.index)) / np.sqrt(1.0 + steps / 1000.0)
        return values, steps, self.start_ms + steps


def run_id(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def history_runs(sizes: Sizes) -> list[HistoryRun]:
    runs = [HistoryRun("big", 0, sizes.big_points, {}), HistoryRun("raw", 1, sizes.raw_points, {})]
    for i in range(sizes.compare_runs):
        params = {"lr": LRS[i % len(LRS)], "seed": str(i)}
        runs.append(HistoryRun(f"cmp-{i}", 2 + i, sizes.compare_points, params))
    return runs


def compare_run_ids(sizes: Sizes) -> list[str]:
    return [r.run_id for r in history_runs(sizes)[2:]]


@dataclass(frozen=True)
class SearchRun:
    index: int
    points: int

    @property
    def name(self) -> str:
        return f"search-{self.index}"

    @property
    def run_id(self) -> str:
        return run_id(self.name)

    @property
    def start_ms(self) -> int:
        return T0 + self.index * 1000

    @property
    def params(self) -> dict[str, str]:
        i = self.index
        opt = ["adam", "sgd", "adamw"][i % 3]
        return {
            "lr": LRS[i % 4],
            "depth": str(2 + i % 10),
            "optimizer": opt,
            "batch_size": str(2 ** (4 + i % 5)),
            "seed": str(i),
        }

    @property
    def tags(self) -> dict[str, str]:
        i = self.index
        return {"team": f"team-{i % 20}", "stage": ["dev", "staging", "prod"][i % 3], "note": f"search run {i}"}

    def metrics(self) -> list[tuple[int, int, dict[str, float]]]:
        """(step, timestamp, {key: value}) per point; the last point carries the final values."""
        acc = (self.index * 0.6180339887498949) % 1.0  # distinct, evenly spread: no ties in ORDER BY acc
        final = {"acc": acc, "loss": 1.0 - acc, "f1": (acc * 0.7 + 0.1 * (self.index % 3)) % 1.0}
        return [
            (s, self.start_ms + s, {k: v * (s + 1) / self.points for k, v in final.items()}) for s in range(self.points)
        ]


def expected_search(sizes: Sizes) -> list[str]:
    """The run ids SEARCH_FILTER / SEARCH_ORDER must return, computed here from the data."""
    finals = []
    for i in range(sizes.search_runs):
        run = SearchRun(i, sizes.search_points)
        acc = run.metrics()[-1][2]["acc"]
        if acc > 0.5 and run.params["lr"] == "0.01":
            finals.append((-acc, run.run_id))
    return [r for _, r in sorted(finals)[:SEARCH_RESULTS]]
