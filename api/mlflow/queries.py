"""The reads MLflow's API needs beyond api.queries: a run's dataset inputs, sampled history across
runs (get-history-bulk-interval), and the facts the write path checks."""

from __future__ import annotations

from typing import Any

import numpy as np
from clickhouse_connect.driver.client import Client

from runstream.api import queries
from runstream.api.mlflow import shapes

_INPUTS = (
    "SELECT run_id, name, digest, source_type, source, schema, profile, tags FROM run_inputs FINAL "
    "WHERE run_id IN {ids:Array(String)} ORDER BY run_id, event_time, seq LIMIT 1 BY run_id, name, digest"
)


def dataset_inputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per run, its datasets in the order first logged (a dataset logged again is listed once)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if run_ids:
        for run_id, name, digest, source_type, source, schema, profile, tags in client.query(
            _INPUTS, parameters={"ids": run_ids}
        ).result_rows:
            dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
            dataset |= {k: v for k, v in (("schema", schema), ("profile", profile)) if v is not None}
            out.setdefault(run_id, []).append({"tags": shapes.key_values(tags), "dataset": dataset})
    return out


_OUTPUTS = (
    "SELECT run_id, model_id, step FROM run_outputs FINAL WHERE run_id IN {ids:Array(String)} "
    "ORDER BY run_id, event_time, seq LIMIT 1 BY run_id, model_id, step"
)


def model_outputs(client: Client, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per run, the logged models it produced (MLflow 3's runs/outputs), in the order logged."""
    out: dict[str, list[dict[str, Any]]] = {}
    if run_ids:
        for run_id, model_id, step in client.query(_OUTPUTS, parameters={"ids": run_ids}).result_rows:
            out.setdefault(run_id, []).append({"model_id": model_id, "step": step})
    return out


def runs_with_inputs(client: Client, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs as MLflow shows them: with their dataset inputs and model outputs."""
    ids = [r["run_id"] for r in runs]
    inputs, outputs = dataset_inputs(client, ids), model_outputs(client, ids)
    return [shapes.run(r, inputs.get(r["run_id"], []), outputs.get(r["run_id"], [])) for r in runs]


def run(client: Client, run_id: str) -> dict[str, Any] | None:
    found = queries.run(client, run_id)
    return runs_with_inputs(client, [found])[0] if found else None


_STEPS = (
    "SELECT run_id, groupArray(step) FROM (SELECT DISTINCT run_id, step FROM metrics "
    "WHERE run_id IN {ids:Array(String)} AND key = {key:String} ORDER BY run_id, step) GROUP BY run_id"
)
_POINTS = (
    "SELECT run_id, step, timestamp, value FROM metrics FINAL "
    "WHERE run_id IN {ids:Array(String)} AND key = {key:String} AND step IN {steps:Array(Int64)} "
    "ORDER BY run_id, step, timestamp, rank, value"
)


def sampled_steps(steps_per_run: list[np.ndarray], max_results: int, start: int | None, end: int | None) -> np.ndarray:
    """MLflow's sampling (AbstractStore.get_metric_history_bulk_interval): at most max_results steps
    evenly over the distinct steps of all runs in [start, end], plus the last one, plus every run's
    first and last step in range."""
    all_steps = np.unique(np.concatenate(steps_per_run)) if steps_per_run else np.zeros(0, np.int64)
    if start is None or end is None:
        start, end = 0, int(all_steps[-1]) if len(all_steps) else 0
    ends = np.array([s for run in steps_per_run if len(run) for s in (run[0], run[-1])], np.int64)
    ends = ends[(ends >= start) & (ends <= end)]
    lo, hi = np.searchsorted(all_steps, start, "left"), np.searchsorted(all_steps, end, "right")
    if hi - lo <= max_results:
        chosen = all_steps[lo:hi]
    else:
        picks = lo + (np.arange(max_results) * ((hi - lo) / max_results)).astype(np.int64)
        chosen = np.append(all_steps[picks[picks < hi]], all_steps[hi - 1])
    return np.union1d(chosen, ends)


def history_bulk_interval(
    client: Client, run_ids: list[str], key: str, max_results: int, start: int | None, end: int | None
) -> list[dict[str, Any]]:
    per_run = {
        run_id: np.asarray(steps, np.int64)
        for run_id, steps in client.query(_STEPS, parameters={"ids": run_ids, "key": key}).result_rows
    }
    steps = sampled_steps(list(per_run.values()), max_results, start, end)
    if not len(steps):
        return []
    rows = client.query(_POINTS, parameters={"ids": run_ids, "key": key, "steps": steps.tolist()}).result_rows
    # MLflow caps each run's rows near the sample size, in case many values share one step.
    cap = max(max_results, len(steps))
    points: dict[str, list[dict[str, Any]]] = {}
    for run_id, step, timestamp, value in rows:
        points.setdefault(run_id, []).append({**shapes.metric(key, value, timestamp, step), "run_id": run_id})
    out: list[dict[str, Any]] = []
    for run_id in dict.fromkeys(run_ids):  # the request's order, each run once
        found = points.get(run_id, [])
        if len(found) > cap:
            found = [found[i] for i in np.linspace(0, len(found) - 1, cap).astype(int)]
        out += found
    return out


def run_ids(client: Client, experiment_id: str, view: str) -> list[str]:
    result = client.query(
        f"SELECT run_id FROM runs_view WHERE experiment_id = {{id:String}} AND {queries.LIFECYCLE[view]}",
        parameters={"id": experiment_id},
    )
    return [row[0] for row in result.result_rows]


def experiment_by_name(client: Client, name: str) -> dict[str, Any] | None:
    """Active or deleted (MLflow's get-by-name finds both; a deleted name still blocks creation)."""
    found = queries.experiments(client, "all", name)
    return found[0] if found else None
