"""The read API of two checkouts on the same data: is a change to the read path faster or slower?

    git worktree add /tmp/before REV
    .venv/bin/python -m bench.reads_ab --before /tmp/before [--rounds 3] [--reps 15] [--search-runs 100000]

Loads bench.queries' dataset once (SDK → Kafka → projector → ClickHouse server), waits for the merges,
then starts `runstream api` from the `--before` tree and from this tree in turn, `--rounds` times,
and times bench.queries' figures on each (`all_runs` with `--all-runs`: pages through the whole search
experiment, so it is for a `--search-runs 10000` dataset, the issue's size).
Timing both against one database removes what separate loads differ in (parts, merges), the largest
spread between two bench.queries runs. Results: bench/results/reads_ab.json, p50 per figure and
round, and after/before ratios of the medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import runstream
from bench.dataset import (
    GROUP_BY,
    KEY,
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_ORDER,
    SEARCH_RESULTS,
    Sizes,
    compare_run_ids,
    expected_search,
    history_runs,
)
from bench.queries import all_runs, git_state, load_runstream, measure, whole
from bench.stack import Stack
from runstream.schemas.events import experiment_id_for_name
from tests.integration.roles import Role
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "reads_ab.json"
FIGURES = ["downsampled", "raw", "compare", "aggregate", "search"]
ALL_RUNS = "all_runs"


def time_figures(url: str, sizes: Sizes, reps: int, figures: list[str]) -> dict[str, float]:
    """p50 seconds per figure, each call checked once as bench.queries checks it."""
    runs = history_runs(sizes)
    big, raw, ids = runs[0].run_id, runs[1].run_id, compare_run_ids(sizes)
    client = runstream.Client(url, timeout=600, retry_for_s=0)
    search_exp = [experiment_id_for_name(SEARCH_EXPERIMENT)]
    expected = expected_search(sizes)

    def search() -> list[str]:
        found, _ = client.search_runs(search_exp, SEARCH_FILTER, SEARCH_ORDER, SEARCH_RESULTS)
        return [r["run_id"] for r in found]

    calls = {
        "downsampled": (lambda: client.get_metric_history(big, KEY, max_points=sizes.buckets), lambda s: None),
        "raw": (
            lambda: client.get_metric_history(raw, KEY),
            lambda h: None if len(h) == sizes.raw_points else f"{len(h)} points",
        ),
        "compare": (
            lambda: client.compare_runs(ids, [KEY], sizes.buckets),
            lambda r: None if len(r["series"]) == sizes.compare_runs else "series",
        ),
        "aggregate": (lambda: client.aggregate_runs(ids, KEY, [GROUP_BY], max_points=sizes.buckets), lambda g: None),
        "search": (search, lambda found: None if found == expected else "run ids"),
        ALL_RUNS: (lambda: all_runs(client, search_exp), lambda runs: whole(sizes, runs)),
    }
    out = {}
    for name in figures:
        call, check = calls[name]
        figure = measure(call, check, reps, budget=120.0, min_reps=reps)
        if figure.get("check") != "ok":
            raise RuntimeError(f"{name}: {figure}")
        out[name] = figure["p50_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code to compare against")
    parser.add_argument("--rounds", type=int, default=3, help="times each checkout's API is started and timed")
    parser.add_argument("--reps", type=int, default=15, help="timed calls per figure and round")
    parser.add_argument("--search-runs", type=int, default=None, help=f"default {Sizes().search_runs:,}")
    parser.add_argument("--all-runs", action="store_true", help="also time every run of the search experiment")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results are written")
    args = parser.parse_args()
    figures = [*FIGURES, ALL_RUNS] if args.all_runs else FIGURES
    sizes = replace(Sizes(), **({"search_runs": args.search_runs} if args.search_runs else {}))
    # What load_runstream reads of bench.queries' options, at its defaults.
    load_args = argparse.Namespace(loaders=2, chunk=100_000, merge_wait=180.0)
    trees = {"before": args.before.resolve(), "after": Path(__file__).resolve().parents[1]}
    results: dict[str, Any] = {
        "settings": {"rounds": args.rounds, "reps": args.reps, "sizes": asdict(sizes), "cores": os.cpu_count()},
        "code": {label: git_state(tree) for label, tree in trees.items()},
        "uptime_before": os.popen("uptime").read().strip(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="runstream-bench-reads-ab-"))
    rounds: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        with ExitStack() as stack:
            print("loading bench.queries' dataset through the pipeline ...", flush=True)
            pipeline = Stack(workdir, stack)
            results["loading"] = load_runstream(pipeline, sizes, load_args)
            for r in range(args.rounds):
                # Alternate which goes first, so neither always meets a warmer page cache.
                for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                    port = free_port()
                    role = Role(
                        workdir, "api", "--host", "127.0.0.1", "--port", str(port), env=pipeline.env, tree=trees[label]
                    )
                    try:
                        timed = time_figures(f"http://127.0.0.1:{port}", sizes, args.reps, figures)
                    finally:
                        role.stop()
                    rounds[label].append(timed)
                    print(f"round {r + 1} {label}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in timed.items()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {label: {name: statistics.median(f[name] for f in rounds[label]) for name in figures} for label in rounds}
    results.update(
        rounds=rounds,
        median_p50_s=medians,
        after_over_before={name: round(medians["after"][name] / medians["before"][name], 3) for name in figures},
        uptime_after=os.popen("uptime").read().strip(),
    )
    args.results.parent.mkdir(exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print("after / before, median of the rounds' p50s:")
    for name in figures:
        before, after = medians["before"][name], medians["after"][name]
        print(f"  {name:12} {before * 1000:8.1f} ms → {after * 1000:8.1f} ms  ({after / before:.3f})")
    print(f"(results in {args.results}; {time.strftime('%H:%M')})")


if __name__ == "__main__":
    main()
