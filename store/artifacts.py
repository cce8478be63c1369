"""Parameterised SQL for artifact listings: the latest record of each path (a path logged again
replaces its record; a deleted one is left out), and the folder tree built from those paths. A
run's artifacts by default; a logged model's (MLflow 3) with owner="model"."""

from __future__ import annotations

import time
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

Owner = Literal["run", "model"]
_LATEST = (
    "SELECT path, argMax(size, (event_time, seq)) AS size, argMax(sha256, (event_time, seq)) AS sha256, "
    "argMax(uri, (event_time, seq)) AS uri FROM {table} WHERE {owner} = {id:String} AND {where} "
    "GROUP BY path HAVING sha256 != '' ORDER BY path"  # a deleted file's latest record has no sha256
)
_TABLES: dict[Owner, tuple[str, str]] = {"run": ("run_artifacts", "run_id"), "model": ("model_artifacts", "model_id")}


def _latest(owner: Owner, where: str) -> str:
    table, column = _TABLES[owner]
    return _LATEST.replace("{table}", table).replace("{owner}", column).replace("{where}", where)


def artifact(client: Client, run_id: str, path: str, owner: Owner = "run") -> dict[str, Any] | None:
    sql = _latest(owner, "path = {path:String}")
    rows = list(client.query(sql, parameters={"id": run_id, "path": path}).named_results())
    return rows[0] if rows else None


def artifacts(client: Client, run_id: str, folder: str, recursive: bool, owner: Owner = "run") -> list[dict[str, Any]]:
    """Files under `folder` ('' = the root): all of them if `recursive`, else the folder's direct
    children, sub-folders as entries with is_dir, their total size and no checksum."""
    prefix = f"{folder}/" if folder else ""
    sql = _latest(owner, "startsWith(path, {prefix:String})")
    rows = client.query(sql, parameters={"id": run_id, "prefix": prefix}).named_results()
    files = [{"path": r["path"], "is_dir": False, "size": r["size"], "sha256": r["sha256"]} for r in rows]
    if recursive:
        return files
    entries: dict[str, dict[str, Any]] = {}
    for f in files:
        child, sep, _ = f["path"][len(prefix) :].partition("/")
        if not sep:
            entries[f["path"]] = f
            continue
        path = prefix + child
        entry = entries.setdefault(path, {"path": path, "is_dir": True, "size": 0, "sha256": None})
        entry["size"] += f["size"]
    return sorted(entries.values(), key=lambda e: e["path"])


# A run is deleted when its latest delete/restore event is a delete; restoring within the grace
# period keeps its artifacts.
_DELETED_RUNS = """
SELECT run_id FROM run_events
GROUP BY run_id
HAVING argMaxIf(kind, (event_time, seq), kind IN ('deleted', 'restored')) = 'deleted'
   AND maxIf(event_time, kind = 'deleted') <= {cutoff:Int64}
ORDER BY run_id
"""


# A logged model, once deleted, stays deleted (MLflow has no restore for them).
_DELETED_MODELS = """
SELECT model_id FROM logged_model_events
GROUP BY model_id
HAVING maxIf(event_time, kind = 'deleted') <= {cutoff:Int64} AND countIf(kind = 'deleted') > 0
ORDER BY model_id
"""


def _deleted(client: Client, sql: str, grace_s: float) -> list[str]:
    cutoff = int((time.time() - grace_s) * 1000)
    return [row[0] for row in client.query(sql, parameters={"cutoff": cutoff}).result_rows]


def deleted_runs(client: Client, grace_s: float) -> list[str]:
    return _deleted(client, _DELETED_RUNS, grace_s)


def deleted_models(client: Client, grace_s: float) -> list[str]:
    return _deleted(client, _DELETED_MODELS, grace_s)
