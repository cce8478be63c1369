"""Parameterised SQL for artifact listings: the latest record of each path (a path logged again
replaces its record), and the folder tree built from those paths."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

_LATEST = (
    "SELECT path, argMax(size, (event_time, seq)) AS size, argMax(sha256, (event_time, seq)) AS sha256, "
    "argMax(uri, (event_time, seq)) AS uri FROM run_artifacts WHERE run_id = {run_id:String} AND {where} "
    "GROUP BY path ORDER BY path"
)


def artifact(client: Client, run_id: str, path: str) -> dict[str, Any] | None:
    sql = _LATEST.replace("{where}", "path = {path:String}")
    rows = list(client.query(sql, parameters={"run_id": run_id, "path": path}).named_results())
    return rows[0] if rows else None


def artifacts(client: Client, run_id: str, folder: str, recursive: bool) -> list[dict[str, Any]]:
    """Files under `folder` ('' = the root): all of them if `recursive`, else the folder's direct
    children, sub-folders as entries with is_dir, their total size and no checksum."""
    prefix = f"{folder}/" if folder else ""
    sql = _LATEST.replace("{where}", "startsWith(path, {prefix:String})")
    rows = client.query(sql, parameters={"run_id": run_id, "prefix": prefix}).named_results()
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
