"""Runs in relation to other runs: nesting (parent_run_id, or MLflow's mlflow.parentRunId tag) and
grouping by param/tag values."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

PARENT_TAG = "mlflow.parentRunId"
MAX_DEPTH = 100

_PARENT = (
    "SELECT coalesce(r.parent_run_id, t.value) FROM runs_view AS r "
    "LEFT JOIN (SELECT run_id, value FROM run_tags_view WHERE key = {tag:String}) AS t ON t.run_id = r.run_id "
    "WHERE r.run_id = {run_id:String} SETTINGS join_use_nulls = 1"
)


def parents(client: Client, run_id: str) -> list[str]:
    chain: list[str] = []
    current = run_id
    while len(chain) < MAX_DEPTH:
        rows = client.query(_PARENT, parameters={"run_id": current, "tag": PARENT_TAG}).result_rows
        parent = rows[0][0] if rows else None
        if not parent or parent in chain or parent == run_id:  # a cycle in user-set tags ends the walk
            break
        chain.append(parent)
        current = parent
    return chain


def children(client: Client, run_id: str) -> list[str]:
    rows = client.query(
        "SELECT run_id FROM runs_view WHERE parent_run_id = {run_id:String} AND deleted = 0 "
        "UNION DISTINCT SELECT run_id FROM run_tags_view WHERE key = {tag:String} AND value = {run_id:String} "
        "ORDER BY run_id",
        parameters={"run_id": run_id, "tag": PARENT_TAG},
    ).result_rows
    return [r[0] for r in rows]


def group_runs(
    client: Client, run_ids: list[str], group_by: list[str]
) -> list[tuple[dict[str, str | None], list[str]]]:
    """Runs with equal values of every `params.k`/`tags.k` in group_by form a group (a missing value
    is its own value, None). Groups in order of first appearance in run_ids."""
    values: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
    for source, view in (("params", "run_params_view"), ("tags", "run_tags_view")):
        keys = [g.split(".", 1)[1] for g in group_by if g.startswith(f"{source}.")]
        if not keys:
            continue
        rows = client.query(
            f"SELECT run_id, key, value FROM {view} "
            "WHERE run_id IN {runs:Array(String)} AND key IN {keys:Array(String)}",
            parameters={"runs": run_ids, "keys": keys},
        ).result_rows
        for run_id, key, value in rows:
            values[run_id][f"{source}.{key}"] = value
    groups: dict[tuple[str | None, ...], list[str]] = {}
    for run_id in run_ids:
        groups.setdefault(tuple(values[run_id].get(g) for g in group_by), []).append(run_id)
    return [(dict(zip(group_by, key, strict=True)), members) for key, members in groups.items()]
