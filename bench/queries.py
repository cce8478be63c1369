"""Read benchmark: runstream's read API against MLflow's own tracking server, on the same data, in one run.

    .venv/bin/python -m bench.queries [--quick] [--big-points 10000000] [--search-runs 100000] ...

runstream: the data goes through the pipeline (SDK over kafka:// → Kafka broker → `runstream projector`
→ ClickHouse server, all real processes on 127.0.0.1), loading is timed until the projector applied
every write; then `runstream api` is started and read over HTTP with runstream.Client / httpx.
MLflow (pinned in bench/requirements-mlflow.txt, own venv): `mlflow server --workers 1` on sqlite and
on PostgreSQL, the same data bulk-loaded into its own tables, read through its REST API as its client
does. Figures: p50/p95 per call, and runstream/MLflow ratios of the p50s. Results: bench/results/queries.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import numpy as np

import runstream
import runstream.sdk.run as sdk_run
from bench import mlflow_side
from bench.dataset import (
    GROUP_BY,
    HISTORY_EXPERIMENT,
    KEY,
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_ORDER,
    SEARCH_RESULTS,
    HistoryRun,
    SearchRun,
    Sizes,
    compare_run_ids,
    expected_search,
    history_runs,
)
from bench.stack import Stack
from runstream.eventlog.base import Positions, merge_positions, parse_token
from runstream.schemas.events import experiment_id_for_name
from runstream.sdk.transport import KafkaTransport
from tests.services.process import cpu_seconds

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "queries.json"
QUICK = Sizes(big_points=200_000, raw_points=100_000, compare_runs=20, compare_points=2_000, search_runs=2_000)
FIGURES = {  # name: (what, goal for runstream's p50 in s)
    "downsampled": ("downsampled history of 1 run of {big_points:,} points to {buckets:,}", 0.100),
    "raw": ("raw history of {raw_points:,} points", None),
    "compare": ("compare {compare_runs} runs x {compare_points:,} points, {buckets:,} each", 0.150),
    "aggregate": ("aggregate {compare_runs} runs grouped by params.lr (mean/std per bucket)", None),
    "search": ("search {search_runs:,} runs: metric + param filter, order_by, 100 results", 0.100),
    "all_runs": ("every run of an experiment of {search_runs:,}, params, tags, latest metrics, pages of 10,000", None),
}
ALL_RUNS_PAGE = 10_000  # the page of mlflow.search_runs, MLflow's one call for every run
FOLDED = ("metric_summary", "run_state", "param_state", "tag_state", "run_details")  # read with FINAL by searches
Check = Callable[[Any], str | None]
EQUIVALENTS = [
    "MLflow's calls: downsampled = GET metrics/get-history-bulk-interval (max_results 1,000, its row sampling);",
    "raw = GET metrics/get-history paged by 25,000 as its client does (JSON parsed only, lighter than its client);",
    "compare = get-history-bulk-interval with the 100 run_ids; aggregate = no MLflow call does it: runs/search",
    "for the runs' params + get-history-bulk-interval + mean/std in numpy (over sampled points, runstream uses all);",
    "search = POST runs/search; all_runs = POST runs/search without a filter, page after page (page_token).",
    "runstream: runstream.Client over HTTP (get_metric_history, compare_runs,",
    "aggregate_runs, search_runs) against a `runstream api` process.",
]


# ---------------------------------------------------------------- runstream: loading through the pipeline


def _load_history(bootstrap: str, prefix: str, runs: list[HistoryRun], chunk: int) -> dict[str, Any]:
    """One producer process: each run through the SDK, points as columns (log_metric_arrays)."""
    os.environ["RUNSTREAM_TOPIC_PREFIX"] = prefix
    positions: Positions = {}
    start, cpu = time.time(), time.process_time()
    for r in runs:
        run = runstream.start_run(HISTORY_EXPERIMENT, r.name, run_id=r.run_id, tracking_uri=f"kafka://{bootstrap}")
        run.log_params(r.params)
        for first in range(0, r.points, chunk):
            run.log_metric_arrays(KEY, *r.chunk(first, min(chunk, r.points - first)))
        merge_positions(positions, parse_token(run.end()))
    return {"positions": positions, "producer_s": time.time() - start, "cpu_s": time.process_time() - cpu}


class _Shared:
    """One Kafka producer for the many SDK Run objects of a loader process: what their senders hand over
    is collected and appended to Kafka together by `ship` (one acknowledgement wait per batch of runs,
    not one Kafka producer and two round trips per run)."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._kafka = KafkaTransport(bootstrap, prefix)
        self._lock = threading.Lock()
        self._pending: list[tuple[str, bytes]] = []

    def send(self, messages: list[tuple[str, bytes]]) -> Positions:
        with self._lock:
            self._pending += messages
        return {}

    def close(self) -> None:
        """A Run closes its transport when it ends: this one is shared, so nothing to do."""

    def ship(self) -> Positions:
        with self._lock:
            batch, self._pending = self._pending, []
        return self._kafka.send(batch) if batch else {}


def _load_search(bootstrap: str, prefix: str, first: int, count: int, points: int, ship_every: int) -> dict[str, Any]:
    """One loader process: `count` runs, each an SDK Run with params, tags and a few points per metric."""
    shared = _Shared(bootstrap, prefix)
    positions: Positions = {}
    start, cpu = time.time(), time.process_time()
    with mock.patch.object(sdk_run, "transport_for", lambda uri: shared):  # every Run sends through `shared`
        for i in range(first, first + count):
            r = SearchRun(i, points)
            run = runstream.start_run(SEARCH_EXPERIMENT, r.name, r.tags, r.run_id, tracking_uri=f"kafka://{bootstrap}")
            run.log_params(r.params)
            for step, timestamp, metrics in r.metrics():
                run.log_metrics(metrics, step, timestamp)
            run.end()
            if (i - first + 1) % ship_every == 0:
                merge_positions(positions, shared.ship())
    merge_positions(positions, shared.ship())
    return {"positions": positions, "producer_s": time.time() - start, "cpu_s": time.process_time() - cpu}


def _phase(stack: Stack, jobs: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]]) -> dict[str, Any]:
    """Runs loader processes at once; timed from their start until the projector applied all they wrote."""
    pids = stack.pids()
    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.time()
    with ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as pool:
        reports = [f.result() for f in [pool.submit(fn, *args) for fn, args in jobs]]
    positions: Positions = {}
    for report in reports:
        merge_positions(positions, report["positions"])
    applied = stack.wait_applied(positions, timeout=3600)
    seconds = applied - start
    return {
        "loaders": len(jobs),
        "end_to_end_s": round(seconds, 1),
        "producers_done_s": [round(r["producer_s"], 1) for r in reports],
        "cpu_s": {
            **{name: round(cpu_seconds(pid) - cpu[name], 1) for name, pid in pids.items()},
            "loaders": round(sum(r["cpu_s"] for r in reports), 1),
        },
        "load_average": os.getloadavg()[0],
    }


def load_runstream(stack: Stack, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    bootstrap, prefix = stack.kafka.bootstrap, stack.topic_prefix
    os.environ["RUNSTREAM_TOPIC_PREFIX"] = prefix
    warmup = runstream.start_run("bench-warmup", tracking_uri=stack.tracking_uri)  # topic, tables, group in place
    warmup.log_metric(KEY, 1.0)
    stack.wait_applied(parse_token(warmup.end()), timeout=120)
    runs = history_runs(sizes)
    history = _phase(
        stack,
        [
            (_load_history, (bootstrap, prefix, runs[:1], args.chunk)),
            (_load_history, (bootstrap, prefix, runs[1:], args.chunk)),
        ],
    )
    points = sum(r.points for r in runs)
    history.update(runs=len(runs), points=points, points_per_s=round(points / history["end_to_end_s"]))
    per = -(-sizes.search_runs // args.loaders)
    jobs = [
        (_load_search, (bootstrap, prefix, first, min(per, sizes.search_runs - first), sizes.search_points, 2000))
        for first in range(0, sizes.search_runs, per)
    ]
    search = _phase(stack, jobs)
    points = sizes.search_runs * 3 * sizes.search_points
    seconds = search["end_to_end_s"]
    search.update(
        runs=sizes.search_runs,
        points=points,
        runs_per_s=round(sizes.search_runs / seconds),
        points_per_s=round(points / seconds),
    )
    merge_wait = stack.wait_merges(args.merge_wait, FOLDED)
    counts = stack.sql.query("SELECT (SELECT count() FROM metrics), (SELECT count() FROM run_params)").result_rows[0]
    return {
        "history_runs": history,
        "search_runs": search,
        "merge_wait_s": round(merge_wait, 1),
        "rows": {"metrics": counts[0], "run_params": counts[1]},
        "active_parts": {t: stack.parts(t) for t in ("metrics", "metric_rollup", *FOLDED)},
    }


# ---------------------------------------------------------------- timing


def measure(call: Callable[[], Any], check: Check, reps: int, budget: float, min_reps: int) -> dict[str, Any]:
    """A checked warm-up call (counted too when it took > 10 s), then up to `reps` timed calls, fewer
    (at least `min_reps`) when the next one would pass `budget` seconds for this figure."""
    out: dict[str, Any] = {"notes": []}
    try:
        t = time.perf_counter()
        result = call()
        first = time.perf_counter() - t
        out["check"] = check(result) or "ok"
        samples = [first] if first > 10 else []
        if samples:
            out["notes"].append("warm-up counted (>10 s)")
        started = time.perf_counter()
        while len(samples) < reps:
            if len(samples) >= min_reps and time.perf_counter() - started + statistics.median(samples) > budget:
                out["notes"].append(f"capped at {len(samples)} of {reps} calls by the {budget:.0f} s budget")
                break
            t = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t)
    except httpx.TimeoutException:
        out["error"] = "a call passed the per-call timeout"
        return out
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
        return out
    out.update(n=len(samples), p50_s=float(np.percentile(samples, 50)), p95_s=float(np.percentile(samples, 95)))
    return out


def _expect(what: str, want: Any, got: Any) -> str | None:
    return None if want == got else f"{what}: expected {want!r}, got {got!r}"


def all_runs(client: runstream.Client, experiment_ids: list[str]) -> list[dict[str, Any]]:
    """Every run of the experiments, page after page as MLflow's client pages."""
    runs: list[dict[str, Any]] = []
    token = None
    while True:
        page, token = client.search_runs(experiment_ids, max_results=ALL_RUNS_PAGE, page_token=token)
        runs.extend(page)
        if token is None:
            return runs


def whole(sizes: Sizes, runs: list[dict[str, Any]]) -> str | None:
    """all_runs' check: every search run, each with its params, tags and metrics."""
    complete = all(len(r["params"]) == 5 and len(r["tags"]) >= 3 and len(r["metrics"]) == 3 for r in runs)
    return _expect("runs with 5 params, 3 tags, 3 metrics", sizes.search_runs, len(runs) if complete else -1)


def time_runstream(url: str, sizes: Sizes, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures over HTTP, and the time window of each (for the server's query log)."""
    runs = history_runs(sizes)
    big, raw, ids = runs[0].run_id, runs[1].run_id, compare_run_ids(sizes)
    expected = expected_search(sizes)
    n = sizes.buckets
    groups = min(4, sizes.compare_runs)
    client = runstream.Client(url, timeout=args.call_timeout, retry_for_s=0)
    with httpx.Client(base_url=url) as http:
        has_search = "/api/v1/runs/search" in http.get("/openapi.json").json().get("paths", {})
    search_exp = [experiment_id_for_name(SEARCH_EXPERIMENT)]

    def search() -> list[str]:
        found, _ = client.search_runs(search_exp, SEARCH_FILTER, SEARCH_ORDER, SEARCH_RESULTS)
        return [r["run_id"] for r in found]

    calls: dict[str, tuple[Callable[[], Any], Check]] = {
        "downsampled": (
            lambda: client.get_metric_history(big, KEY, max_points=n),
            lambda s: None if 0 < len(s["x_first"]) <= n else f"{len(s['x_first'])} buckets",
        ),
        "raw": (lambda: client.get_metric_history(raw, KEY), lambda h: _expect("points", sizes.raw_points, len(h))),
        "compare": (
            lambda: client.compare_runs(ids, [KEY], n),
            lambda r: _expect("series", sizes.compare_runs, len(r["series"])),
        ),
        "aggregate": (
            lambda: client.aggregate_runs(ids, KEY, [GROUP_BY], max_points=n),
            lambda g: _expect("groups", groups, len(g)),
        ),
        "search": (search, lambda found: _expect("run ids", expected, found)),
        "all_runs": (lambda: all_runs(client, search_exp), lambda runs: whole(sizes, runs)),
    }
    figures: dict[str, Any] = {}
    windows: dict[str, tuple[float, float]] = {}
    for name, (call, check) in calls.items():
        if name == "search" and not has_search:
            figures[name] = {"pending": "POST /api/v1/runs/search is not in server/app.py yet"}
            continue
        start = time.time()
        figures[name] = measure(call, check, args.reps, args.budget, min(args.reps, 5))
        windows[name] = (start, time.time())
        print(f"  runstream {name}: {_cell(figures[name])}", flush=True)
    client.close()
    return figures, windows


def clickhouse_diagnostics(stack: Stack, windows: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per figure, what the ClickHouse server spent (system.query_log of the timing window): the
    queries by total time, with rows and bytes read."""
    out: dict[str, Any] = {}
    sql = """
        SELECT any(substring(replaceRegexpAll(query, '\\s+', ' '), 1, 150)) AS q, count() AS calls,
               round(quantileExact(0.5)(query_duration_ms)) AS p50_ms, max(query_duration_ms) AS max_ms,
               round(avg(read_rows)) AS read_rows, round(avg(read_bytes) / 1e6, 1) AS read_mb,
               round(avg(result_rows)) AS result_rows, round(avg(memory_usage) / 1e6, 1) AS memory_mb,
               round(avg(ProfileEvents['SelectedMarks'])) AS marks, round(avg(ProfileEvents['SelectedParts'])) AS parts
        FROM system.query_log
        WHERE type = 'QueryFinish' AND current_database = {db:String} AND query_kind = 'Select'
          AND event_time_microseconds BETWEEN toDateTime64({t0:Float64}, 6) AND toDateTime64({t1:Float64}, 6)
        GROUP BY normalized_query_hash ORDER BY sum(query_duration_ms) DESC LIMIT 4"""
    try:
        stack.sql.command("SYSTEM FLUSH LOGS")
        for name, (t0, t1) in windows.items():
            result = stack.sql.query(sql, parameters={"db": stack.database, "t0": t0, "t1": t1})
            out[name] = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def time_mlflow(backend: str, venv: Path, workdir: Path, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    """Starts MLflow's server on one backend, bulk-loads the data, times the equivalent REST calls."""
    with ExitStack() as stack:
        started = mlflow_side.start_server(backend, venv, workdir, stack)
        if started is None:
            return {"skipped": "no PostgreSQL server binaries: apt-get install -y postgresql"}
        server, postgres = started
        if postgres is None:
            bulk = mlflow_side.Bulk(sqlite_path=workdir / "mlflow.sqlite")
        else:
            bulk = mlflow_side.Bulk(postgres=postgres, db="mlflow")
        print(f"  mlflow-{backend}: server up, bulk loading ...", flush=True)
        loading = mlflow_side.load(bulk, server, sizes)
        bulk.close()
        print(f"  mlflow-{backend}: loaded {loading}", flush=True)
        reads = mlflow_side.Reads(server.url, args.call_timeout)
        runs = history_runs(sizes)
        big, raw, ids = runs[0].run_id, runs[1].run_id, compare_run_ids(sizes)
        history_exp, search_exp = (loading["experiment_ids"][e] for e in (HISTORY_EXPERIMENT, SEARCH_EXPERIMENT))
        expected = expected_search(sizes)
        n = sizes.buckets
        param = GROUP_BY.split(".", 1)[1]
        calls: dict[str, tuple[Callable[[], Any], Check]] = {
            "downsampled": (
                lambda: reads.sampled([big], KEY, n),
                lambda points: None if 0 < len(points) <= n else f"{len(points)} points",
            ),
            "raw": (lambda: reads.history(raw, KEY), lambda count: _expect("points", sizes.raw_points, count)),
            "compare": (
                lambda: reads.sampled(ids, KEY, n),
                lambda points: _expect("runs", sizes.compare_runs, len({p["run_id"] for p in points})),
            ),
            "aggregate": (
                lambda: reads.aggregate(history_exp, ids, KEY, param, n),
                lambda groups: _expect("groups", min(4, sizes.compare_runs), len(groups)),
            ),
            "search": (
                lambda: reads.search([search_exp], SEARCH_FILTER, SEARCH_ORDER, SEARCH_RESULTS),
                lambda found: _expect("run ids", expected, found),
            ),
            "all_runs": (
                lambda: reads.all_runs([search_exp], ALL_RUNS_PAGE),
                lambda c: (
                    _expect("runs with 5 params, 3 tags, 3 metrics", sizes.search_runs, c[0])
                    or (None if (c[1], c[2] >= 3, c[3]) == (5, True, 3) else f"fewest params, tags, metrics {c[1:]}")
                ),
            ),
        }
        figures: dict[str, Any] = {}
        for name, (call, check) in calls.items():
            figures[name] = measure(call, check, args.mlflow_reps, args.mlflow_budget, min(args.mlflow_reps, 3))
            print(f"  mlflow-{backend} {name}: {_cell(figures[name])}", flush=True)
        reads.close()
        return {"loading": loading, "figures": figures, "load_average": os.getloadavg()[0]}


# ---------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _cell(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "-"
    if "pending" in figure or "skipped" in figure:
        return "pending" if "pending" in figure else "skipped"
    if "error" in figure:
        return "error"
    cell = f"{_ms(figure['p50_s'])} / {_ms(figure['p95_s'])} (n={figure['n']})"
    return cell + ("" if figure.get("check") == "ok" else " WRONG")


def _ratio(r: float) -> str:
    times = 1 / r if r < 1 else r
    return f"{r:.3g} ({times:,.{0 if times >= 10 else 1}f}x {'faster' if r < 1 else 'slower'})"


def ratios(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """runstream p50 / MLflow p50 per figure and backend (0.01 = runstream 100x faster)."""
    out: dict[str, dict[str, float]] = {}
    for name in FIGURES:
        ours = results["runstream"]["figures"].get(name, {})
        for backend, side in results["mlflow"].items():
            theirs = side.get("figures", {}).get(name, {})
            if "p50_s" in ours and "p50_s" in theirs:
                out.setdefault(name, {})[backend] = ours["p50_s"] / theirs["p50_s"]
    return out


def table(results: dict[str, Any]) -> str:
    sizes = results["settings"]["sizes"]
    backends = list(results["mlflow"])
    head = ["figure", "goal", "runstream p50 / p95", *(f"mlflow-{b} p50 / p95" for b in backends)]
    head += [f"runstream/{b}" for b in backends]
    rows = [head]
    for name, (what, goal) in FIGURES.items():
        ours = results["runstream"]["figures"].get(name)
        row = [what.format(**sizes), f"p50 < {_ms(goal)}" if goal else "", _cell(ours)]
        row += [_cell(results["mlflow"][b].get("figures", results["mlflow"][b]).get(name)) for b in backends]
        for b in backends:
            r = results["ratios"].get(name, {}).get(b)
            row.append(_ratio(r) if r else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    notes = []
    for side, figs in [("runstream", results["runstream"]["figures"])] + [
        (f"mlflow-{b}", results["mlflow"][b].get("figures", {})) for b in backends
    ]:
        for name, fig in figs.items():
            extra = fig.get("notes", []) + [fig[k] for k in ("error", "pending") if k in fig]
            if fig.get("check") not in (None, "ok"):
                extra.append(f"wrong answer: {fig['check']}")
            notes += [f"{side} {name}: {e}" for e in extra]
    return "\n".join([*lines, "", *EQUIVALENTS, "", *notes])


def loading_summary(results: dict[str, Any]) -> str:
    load = results["runstream"]["loading"]
    h, s = load["history_runs"], load["search_runs"]
    lines = [
        f"runstream load, history runs: {h['points']:,} points in {h['end_to_end_s']} s"
        f" = {h['points_per_s']:,} points/s"
        f" (SDK → Kafka → projector → ClickHouse; producer processes done after {h['producers_done_s']} s:"
        " the 10M-point run / the other runs, each of those with its own Kafka producer as start_run makes;"
        f" cpu {h['cpu_s']})",
        f"runstream load, search runs: {s['runs']:,} runs in {s['end_to_end_s']} s = {s['runs_per_s']:,} runs/s,"
        f" {s['points_per_s']:,} points/s ({s['loaders']} loader processes; cpu {s['cpu_s']})",
        f"runstream after load: merges waited {load['merge_wait_s']} s, active parts {load['active_parts']}",
    ]
    for backend, side in results["mlflow"].items():
        if "loading" in side:
            lines.append(
                f"mlflow-{backend}: loaded by bulk SQL into its own tables (reads only compared): {side['loading']}"
            )
        elif "skipped" in side:
            lines.append(f"mlflow-{backend}: skipped: {side['skipped']}")
    return "\n".join(lines)


def git_state(repo: Path = REPO) -> str:
    """The commit measured, and the files that differ from it (others may be editing the tree)."""
    git = ["git", "-C", str(repo)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    changed = [line[3:] for line in dirty.stdout.splitlines()]
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def diagnostics_summary(results: dict[str, Any]) -> str:
    lines = ["ClickHouse server per runstream figure (system.query_log; per query: calls, p50, rows/MB read):"]
    for name, queries in results["runstream"].get("clickhouse", {}).items():
        if name == "error":
            lines.append(f"  {queries}")
            continue
        for q in queries[:3]:
            text = q["q"][:100]
            lines.append(
                f"  {name}: {q['calls']}x p50 {q['p50_ms']:.0f} ms, {q['read_rows']:,.0f} rows / {q['read_mb']} MB"
                f" read, {q['result_rows']:,.0f} rows out: {text}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Sizes()
    parser.add_argument("--quick", action="store_true", help=f"small sizes for a smoke run: {QUICK}")
    for field, value in asdict(default).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=None, help=f"default {value:,}")
    parser.add_argument("--mlflow-big-points", type=int, default=None, help="points of MLflow's big run if fewer")
    parser.add_argument("--backends", default="sqlite,postgres", help="MLflow backends to run ('' for none)")
    parser.add_argument("--reps", type=int, default=20, help="timed calls per runstream figure")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per runstream figure at most")
    parser.add_argument("--mlflow-reps", type=int, default=10, help="timed calls per MLflow figure at most")
    parser.add_argument("--mlflow-budget", type=float, default=100.0, help="seconds per MLflow figure (>= 3 calls)")
    parser.add_argument("--call-timeout", type=float, default=600.0, help="HTTP timeout of one call, seconds")
    parser.add_argument("--loaders", type=int, default=2, help="processes that create the search runs")
    parser.add_argument("--chunk", type=int, default=100_000, help="points per log_metric_arrays call")
    parser.add_argument("--merge-wait", type=float, default=180.0, help="wait for ClickHouse merges, seconds at most")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results are written")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    base = QUICK if args.quick else default
    sizes = replace(base, **{k: v for k, v in vars(args).items() if k in asdict(base) and v is not None})
    mlflow_sizes = replace(sizes, big_points=args.mlflow_big_points) if args.mlflow_big_points else sizes
    backends = [b for b in args.backends.split(",") if b]
    workdir = Path(tempfile.mkdtemp(prefix="runstream-bench-queries-"))
    settings = {k: v for k, v in vars(args).items() if k not in asdict(base) and k != "keep"}
    results: dict[str, Any] = {
        "settings": {**settings, "sizes": asdict(sizes), "mlflow_sizes": asdict(mlflow_sizes), "cores": os.cpu_count()},
        "load_average_at_start": os.getloadavg(),
        "code": git_state(),
    }
    started = time.time()
    try:
        venv = mlflow_side.mlflow_venv() if backends else None
        with ExitStack() as stack:
            print("runstream: starting Kafka, ClickHouse, projector; loading through the pipeline ...", flush=True)
            pipeline = Stack(workdir / "runstream", stack)
            loading = load_runstream(pipeline, sizes, args)
            url = pipeline.start_api()
            figures, windows = time_runstream(url, sizes, args)
            diagnostics = clickhouse_diagnostics(pipeline, windows)
            results["runstream"] = {"loading": loading, "figures": figures, "clickhouse": diagnostics}
        results["mlflow"] = {}
        for backend in backends:
            assert venv is not None
            print(f"mlflow-{backend}: starting ...", flush=True)
            try:
                results["mlflow"][backend] = time_mlflow(
                    backend, venv, workdir / f"mlflow-{backend}", mlflow_sizes, args
                )
            except Exception as exc:  # the other backend and the report still go on
                results["mlflow"][backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                print(f"mlflow-{backend} failed: {exc}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["ratios"] = ratios(results)
    results["settings"]["seconds"] = round(time.time() - started)
    results["load_average_at_end"] = os.getloadavg()
    args.results.parent.mkdir(exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(loading_summary(results))
    if mlflow_sizes != sizes:
        print(f"note: MLflow's big run has {mlflow_sizes.big_points:,} points (runstream's {sizes.big_points:,})")
    print(diagnostics_summary(results))
    print(
        f"code measured: {results['code']}; load average at start / end: "
        f"{results['load_average_at_start'][0]:.1f} / {results['load_average_at_end'][0]:.1f} on {os.cpu_count()} cores"
    )
    print()
    print(table(results))
    print(f"\nwritten to {args.results}" + (f"; work dir {workdir}" if args.keep else ""))


if __name__ == "__main__":
    main()
