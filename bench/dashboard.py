"""The dashboard in headless Chromium, timed with the page's Performance API (`.venv/bin/python -m
bench.dashboard`): `runstream serve` on embedded storage, loaded through the pipeline (framed events
to the native batch endpoint) with bench/dataset.py's data; then, per figure, a fresh navigation:

- runs table of 100,000 runs: navigation start → first rows painted (and a jump to the middle row);
- the chart of one 10M-point run: its /series request → drawn, and navigation → drawn;
- compare 100 runs x 10,000 points: the same two spans;
- live: an SDK run in this process logs a point and flushes; the time from the flush's start to the
  frame that shows the point on the run page.

MLflow's own UI (`mlflow server`, its venv from bench/mlflow_side.py; the same data bulk-loaded into
its sqlite tables) is timed on the views it has: its runs table, its run page's metric chart, its
metric page comparing runs. It has no live charts. The same MLflow web app served by runstream
(`serve --mlflow-ui`, mlflow beside it) is timed on the same views of runstream's data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Page, sync_playwright

import runstream
from bench import mlflow_side
from bench.dataset import HISTORY_EXPERIMENT, KEY, SEARCH_EXPERIMENT, SearchRun, Sizes, history_runs
from bench.report import run_and_save
from runstream.schemas.events import MetricColumns, event, experiment_id_for_name, metric_batch_fields
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.browser.seed import post, wait_applied
from tests.integration.roles import REPO, Role
from tests.services.ports import free_port
from tests.venvs import joined_python

RESULTS = REPO / "bench" / "results" / "dashboard.json"
CHUNK = 1_000_000  # points per MetricBatch event
Event = tuple[str, dict[str, object]]

# ---------------------------------------------------------------- loading


def _run(
    run_id: str, experiment: str, name: str, start: int, params: dict[str, str], tags: dict[str, str]
) -> Iterator[Event]:
    yield event(
        "RunCreated",
        run_id=run_id,
        experiment_id=experiment_id_for_name(experiment),
        run_name=name,
        user_id="bench",
        start_time=start,
        tags=tags,
        parent_run_id=None,
        artifact_uri=None,
    )
    if params:
        yield event("ParamsLogged", run_id=run_id, params=params)
    yield event("RunUpdated", run_id=run_id, status="FINISHED", end_time=start + 1000, run_name=None)


def _batch(
    run_id: str, keys: list[str], key_index: np.ndarray, values: np.ndarray, steps: np.ndarray, stamps: np.ndarray
) -> Event:
    columns = MetricColumns(run_id, 0, "bench", keys, key_index.astype(np.uint16), values, steps, stamps)
    return event("MetricBatch", **metric_batch_fields(columns))


def history_events(sizes: Sizes) -> Iterator[Event]:
    """The 10M-point run and the 100 compare runs (bench/dataset.py's "raw" run is left out)."""
    for r in history_runs(sizes):
        if r.name == "raw":
            continue
        yield from _run(r.run_id, HISTORY_EXPERIMENT, r.name, r.start_ms, r.params, {})
        for first in range(0, r.points, CHUNK):
            values, steps, stamps = r.chunk(first, min(CHUNK, r.points - first))
            yield _batch(r.run_id, [KEY], np.zeros(len(values)), values, steps, stamps)


def search_events(sizes: Sizes) -> Iterator[Event]:
    for i in range(sizes.search_runs):
        r = SearchRun(i, sizes.search_points)
        yield from _run(r.run_id, SEARCH_EXPERIMENT, r.name, r.start_ms, r.params, r.tags)
        points = r.metrics()
        keys = list(points[0][2])
        steps = np.repeat([s for s, _, _ in points], len(keys))
        stamps = np.repeat([t for _, t, _ in points], len(keys))
        values = np.array([m[k] for _, _, m in points for k in keys])
        yield _batch(r.run_id, keys, np.tile(np.arange(len(keys)), len(points)), values, steps, stamps)


def load_runstream(base: str, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    experiments = [
        event("ExperimentCreated", experiment_id=experiment_id_for_name(n), name=n, artifact_location=None, tags={})
        for n in (HISTORY_EXPERIMENT, SEARCH_EXPERIMENT)
    ]
    for name, events in (("history", history_events(sizes)), ("search", search_events(sizes))):
        start = time.time()
        wait_applied(base, post(base, [*experiments, *events]) if name == "history" else post(base, events))
        out[f"{name}_load_s"] = round(time.time() - start, 1)
    return out


# ---------------------------------------------------------------- timing in the page


def _fresh(page: Page, url: str) -> None:
    page.goto("about:blank")
    page.goto(url)


def _when(page: Page, condition: str, timeout_s: float) -> float:
    """performance.now() (ms since the navigation started) at the first frame where `condition` (a JS
    expression) holds."""
    handle = page.wait_for_function(
        f"() => ({condition}) ? performance.now() : 0", polling="raf", timeout=timeout_s * 1000
    )
    return float(handle.json_value())


def _request_start(page: Page, suffix: str) -> float:
    """When the page's last request to a URL ending with `suffix` started (ms since navigation)."""
    return float(
        page.evaluate(
            "(s) => Math.max(...performance.getEntriesByType('resource')"
            ".filter(e => e.name.endsWith(s)).map(e => e.startTime))",
            suffix,
        )
    )


def _stats(samples: list[float]) -> dict[str, Any]:
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "max_ms": round(max(samples), 1),
        "samples_ms": [round(s, 1) for s in samples],
    }


def _repeat(reps: int, once: Callable[[], dict[str, float]]) -> dict[str, Any]:
    """One warm-up, then `reps` timed rounds; each figure's median over the rounds."""
    once()
    rounds = [once() for _ in range(reps)]
    return {name: _stats([r[name] for r in rounds]) for name in rounds[0]}


def time_runstream(page: Page, base: str, sizes: Sizes, reps: int) -> dict[str, Any]:
    search_id = experiment_id_for_name(SEARCH_EXPERIMENT)
    history_id = experiment_id_for_name(HISTORY_EXPERIMENT)
    runs = history_runs(sizes)
    big = next(r for r in runs if r.name == "big")
    compared = [r.run_id for r in runs if r.name.startswith("cmp-")]
    chart = ".chart[data-title='loss']"
    middle = sizes.search_runs // 2

    def table() -> dict[str, float]:
        _fresh(page, f"{base}/#/experiments/{search_id}")
        painted = _when(page, "document.querySelector(\".grid .row[data-index='0'] .cell.name a\")", 60)
        jump = page.evaluate(
            f"() => {{ document.querySelector('.grid').scrollTop = {middle} * 28; return performance.now(); }}"
        )
        landed = _when(page, f"document.querySelector(\".grid .row[data-index='{middle}'] .cell.name a\")", 60)
        return {"first_rows_painted": painted, "scroll_to_middle_row_painted": landed - jump}

    def one_chart() -> dict[str, float]:
        _fresh(page, f"{base}/#/runs/{big.run_id}")
        drawn = _when(page, f'document.querySelector("{chart}[data-points]")', 60)
        return {"request_to_drawn": drawn - _request_start(page, "/series"), "navigation_to_drawn": drawn}

    def compare() -> dict[str, float]:
        _fresh(page, f"{base}/#/compare?exp={history_id}&runs={','.join(compared)}&keys={KEY}")
        drawn = _when(page, f'document.querySelector("{chart}[data-points]")', 60)
        return {"request_to_drawn": drawn - _request_start(page, "/series"), "navigation_to_drawn": drawn}

    out = {
        "runs_table_100k": _repeat(reps, table),
        "chart_10M": _repeat(reps, one_chart),
        "compare_100x10k": _repeat(reps, compare),
    }
    out["compare_100x10k"]["series_drawn"] = int(page.locator(chart).get_attribute("data-series") or 0)
    out["live_update"] = time_live(page, base, 3 * reps + 5)
    return out


def time_live(page: Page, base: str, points: int) -> dict[str, Any]:
    """Flush → on screen, one point at a time, at random moments against the page's polling."""
    run = runstream.start_run("bench-live", "live", tracking_uri=base, flush_interval=3600)  # only flush() sends
    run.log_metric(KEY, 1.0, step=0)
    wait_applied(base, run.flush())
    _fresh(page, f"{base}/#/runs/{run.run_id}")
    _when(page, "document.querySelector(\".chart[data-title='loss'][data-points]\")", 30)
    rng = np.random.default_rng(0)
    samples = []
    for step in range(1, points + 1):
        time.sleep(float(rng.uniform(0.2, 0.8)))
        run.log_metric(KEY, 1.0 / (step + 1), step=step)
        flushed = time.time() * 1000
        run.flush()
        handle = page.wait_for_function(
            f"() => Number(document.querySelector(\".chart[data-title='loss']\").dataset.xMax) >= {step} && Date.now()",
            polling="raf",
            timeout=30_000,
        )
        samples.append(float(handle.json_value()) - flushed)
    run.end()
    return _stats(samples)


# ---------------------------------------------------------------- MLflow's UI


def time_mlflow_ui(page: Page, ui: str, experiment_ids: dict[str, str], sizes: Sizes, reps: int) -> dict[str, Any]:
    """MLflow's web app at `ui` (MLflow's own server, or runstream's /mlflow/) on the views it has."""
    runs = history_runs(sizes)
    big = next(r for r in runs if r.name == "big")
    compared = [r.run_id for r in runs if r.name.startswith("cmp-")]
    last = SearchRun(sizes.search_runs - 1, sizes.search_points).name  # newest first, as MLflow sorts
    line = "document.querySelector('.js-plotly-plot .scatterlayer .trace path.js-line')"

    def table() -> dict[str, float]:
        _fresh(page, f"{ui}#/experiments/{experiment_ids[SEARCH_EXPERIMENT]}/runs")
        return {
            "first_rows_painted": _when(
                page, f"[...document.querySelectorAll('a')].some(a => a.textContent === '{last}')", 120
            )
        }

    def one_chart() -> dict[str, float]:
        _fresh(page, f"{ui}#/experiments/{experiment_ids[HISTORY_EXPERIMENT]}/runs/{big.run_id}/model-metrics")
        return {"navigation_to_drawn": _when(page, line, 180)}

    def compare() -> dict[str, float]:
        # The metric page (MLflow's "compare runs" chart): `runs` first in its query, and it
        # fails ("undefined" is not valid JSON) without plot_metric_keys.
        experiments = _json_list([experiment_ids[HISTORY_EXPERIMENT]])
        query = f"runs={_json_list(compared)}&metric=%22{KEY}%22&experiments={experiments}"
        _fresh(page, f"{ui}#/metric?{query}&plot_metric_keys={_json_list([KEY])}")
        return {"navigation_to_drawn": _when(page, line, 180)}

    out: dict[str, Any] = {}
    for name, once in (("runs_table_100k", table), ("chart_10M", one_chart), ("compare_100x10k", compare)):
        try:
            out[name] = _repeat(reps, once)
        except Exception as exc:  # a view MLflow could not show in time is a result, not a crash
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def time_mlflow(page: Page, workdir: Path, sizes: Sizes, reps: int) -> dict[str, Any]:
    with ExitStack() as stack:
        started = mlflow_side.start_server("sqlite", mlflow_side.mlflow_venv(), workdir / "mlflow", stack)
        assert started is not None
        server, _ = started
        bulk = mlflow_side.Bulk(sqlite_path=workdir / "mlflow" / "mlflow.sqlite")
        loaded = mlflow_side.load(bulk, server, sizes)
        bulk.close()
        return {"load": loaded, **time_mlflow_ui(page, f"{server.url}/", loaded["experiment_ids"], sizes, reps)}


def _json_list(values: list[str]) -> str:
    return "[" + ",".join(f'"{v}"' for v in values) + "]"


# ---------------------------------------------------------------- main


def bench(workdir: Path, sizes: Sizes, reps: int, mlflow_reps: int) -> dict[str, Any]:
    port = free_port()
    serve = ["--port", str(port), "--data-dir", str(workdir / "data")]
    if mlflow_reps:  # MLflow's web app served by runstream too: mlflow beside it, as runstream[mlflow-ui]
        python = joined_python(workdir / "venv", mlflow_side.mlflow_venv() / "bin" / "python", Path(sys.executable))
        role = Role(workdir, "serve", *serve, "--mlflow-ui", python=python)
    else:
        role = Role(workdir, "serve", *serve)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"sizes": sizes.__dict__, "reps": reps, "mlflow_reps": mlflow_reps}
    try:
        results["runstream_load"] = load_runstream(base, sizes)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            results["runstream"] = time_runstream(page, base, sizes, reps)
            if mlflow_reps:
                ids = {name: experiment_id_for_name(name) for name in (HISTORY_EXPERIMENT, SEARCH_EXPERIMENT)}
                results["mlflow_ui_on_runstream"] = time_mlflow_ui(page, f"{base}/mlflow/", ids, sizes, mlflow_reps)
            role.stop()  # MLflow's turn: the machine to itself
            if mlflow_reps:
                results["mlflow"] = time_mlflow(page, workdir, sizes, mlflow_reps)
            browser.close()
    finally:
        role.stop()
    return results


def summary(results: dict[str, Any]) -> str:
    lines = [f"load: {results['runstream_load']}"]
    for side in ("runstream", "mlflow_ui_on_runstream", "mlflow"):
        for figure, spans in results.get(side, {}).items():
            if figure == "load" or not isinstance(spans, dict):
                continue
            shown = {k: v.get("p50_ms", v) if isinstance(v, dict) else v for k, v in spans.items() if k != "samples_ms"}
            lines.append(f"{side:22} {figure:18} {shown}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="timed rounds per figure (after one warm-up)")
    parser.add_argument("--mlflow-reps", type=int, default=2, help="timed rounds per figure in MLflow's UI")
    parser.add_argument("--no-mlflow", action="store_true", help="time runstream's page only")
    parser.add_argument("--small", action="store_true", help="a tenth of the data, to try the bench quickly")
    args = parser.parse_args()
    sizes = Sizes(big_points=1_000_000, search_runs=10_000) if args.small else Sizes()
    run_and_save(
        "runstream-bench-dashboard-",
        RESULTS.with_name("dashboard_small.json") if args.small else RESULTS,
        lambda workdir: bench(workdir, sizes, args.reps, 0 if args.no_mlflow else args.mlflow_reps),
        summary=summary,
    )


if __name__ == "__main__":
    main()
