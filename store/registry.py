"""The model registry's reads (migrations/004_registry.sql): models and versions as MLflow's
model_registry.proto shapes them, their search, and the history MLflow does not keep."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.schemas.validation import STAGES
from runstream.store.id_sets import query_by_ids
from runstream.store.search.compile_registry import (
    LIVE_MODELS,
    compile_model_version_search,
    compile_registered_model_search,
)
from runstream.store.search.paging import encode_page_token
from runstream.store.search.sql import Query

MAX_MODEL_RESULTS = 1000
MAX_VERSION_RESULTS = 200_000


def _rows(client: Client, sql: str, **parameters: Any) -> list[dict[str, Any]]:
    return list(client.query(sql, parameters=parameters).named_results())


def model_row(client: Client, name: str) -> dict[str, Any] | None:
    """The live model of that name (a row of registered_models_view)."""
    found = _rows(client, f"{LIVE_MODELS} AND name = {{name:String}}", name=name)
    return found[0] if found else None


def model_row_any(client: Client, name: str) -> dict[str, Any] | None:
    """The model named so now, or, if none is live, the last one deleted under that name."""
    found = _rows(
        client,
        "SELECT * FROM registered_models_view WHERE name = {name:String} "
        "ORDER BY deleted, creation_time DESC, registered_model_id LIMIT 1",
        name=name,
    )
    return found[0] if found else None


def _tags(client: Client, sql: str, **parameters: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in client.query(sql, parameters=parameters).result_rows}


def model_tags(client: Client, model_id: str, prefix: str = "") -> dict[str, str]:
    """The model's tags (those whose key starts with `prefix`)."""
    sql = (
        "SELECT key, value FROM registered_model_tags_view WHERE registered_model_id = {id:String} "
        "AND startsWith(key, {prefix:String})"
    )
    return _tags(client, sql, id=model_id, prefix=prefix)


def live_model_tags(client: Client, name: str, prefix: str = "") -> dict[str, str]:
    """The tags of the live model of that name (those whose key starts with `prefix`)."""
    sql = (
        "SELECT key, value FROM registered_model_tags_view WHERE registered_model_id IN ("
        "SELECT registered_model_id FROM registered_models_view WHERE deleted = 0 AND name = {name:String}) "
        "AND startsWith(key, {prefix:String})"
    )
    return _tags(client, sql, name=name, prefix=prefix)


def version_tags(client: Client, model_id: str, version: int) -> dict[str, str]:
    sql = (
        "SELECT key, value FROM model_version_tags_view WHERE registered_model_id = {id:String} AND version = {v:Int64}"
    )
    return _tags(client, sql, id=model_id, v=version)


def model_name(client: Client, model_id: str) -> str | None:
    rows = client.query(
        "SELECT name FROM registered_models_view WHERE registered_model_id = {id:String}", parameters={"id": model_id}
    ).result_rows
    return str(rows[0][0]) if rows else None


def creation_event(client: Client, model_id: str, version: int) -> bytes | None:
    """The event that created this version: the first to claim its number in the log."""
    rows = client.query(
        "SELECT creation_event FROM model_versions_view WHERE registered_model_id = {id:String} "
        "AND version = {version:Int64}",
        parameters={"id": model_id, "version": version},
    ).result_rows
    return bytes(rows[0][0]) if rows else None


def max_version(client: Client, model_id: str) -> int:
    """The highest number ever given in this model, deleted versions included (never reused)."""
    result = client.query(
        "SELECT max(version) FROM model_version_events WHERE registered_model_id = {id:String}",
        parameters={"id": model_id},
    )
    return int(result.result_rows[0][0] or 0)


def _alias_rows(client: Client, ids: list[str]) -> list[tuple[str, str, int]]:
    """(model id, alias, version) of these models, by alias."""
    rows = query_by_ids(
        client,
        "SELECT registered_model_id, alias, version FROM registered_model_aliases_view "
        "WHERE registered_model_id IN {ids:Array(String)} ORDER BY alias",
        ids,
    ).result_rows
    return [(str(model), str(alias), int(version)) for model, alias, version in rows]


def _version_shapes(
    client: Client, rows: list[dict[str, Any]], alias_rows: list[tuple[str, str, int]] | None = None
) -> list[dict[str, Any]]:
    """`alias_rows`: those of the versions' models, if the caller has read them already."""
    ids = list({r["registered_model_id"] for r in rows})
    tags: dict[tuple[str, int], list[dict[str, str]]] = {}
    aliases: dict[tuple[str, int], list[str]] = {}
    if ids:
        for model, version, key, value in query_by_ids(
            client,
            "SELECT registered_model_id, version, key, value FROM model_version_tags_view "
            "WHERE registered_model_id IN {ids:Array(String)} ORDER BY key",
            ids,
        ).result_rows:
            tags.setdefault((model, version), []).append({"key": key, "value": value})
        for model, alias, version in _alias_rows(client, ids) if alias_rows is None else alias_rows:
            aliases.setdefault((model, version), []).append(alias)
    return [
        _version_shape(
            r,
            tags.get((r["registered_model_id"], r["version"]), []),
            aliases.get((r["registered_model_id"], r["version"]), []),
        )
        for r in rows
    ]


def _version_shape(r: dict[str, Any], tags: list[dict[str, str]], aliases: list[str]) -> dict[str, Any]:
    """MLflow's ModelVersion; unset optional fields are left out, as protobuf JSON does."""
    shape: dict[str, Any] = {
        "name": r["name"],
        "version": str(r["version"]),
        "creation_timestamp": r["creation_time"],
        "last_updated_timestamp": r["last_update_time"],
        "current_stage": r["current_stage"],
        "description": r["description"],
        "source": r["source"],
        "run_id": r["run_id"] or "",  # MLflow's server writes these two even when empty
        "run_link": r["run_link"] or "",
        "status": "READY",  # registration is one event: never pending
        "tags": tags,
        "aliases": aliases,
    }
    for field, key in (("user_id", "user_id"), ("model_id", "logged_model_id")):
        if r[key]:
            shape[field] = r[key]
    return shape


def _live_version_rows(client: Client, names: dict[str, str], numbers: Sequence[int] | None) -> list[dict[str, Any]]:
    """Live versions of these live models (id → current name), newest first. The names come from
    the caller's model rows: joining the models' view here would fold every model's events again."""
    sql = "SELECT * FROM model_versions_view WHERE deleted = 0 AND registered_model_id IN {ids:Array(String)}"
    if numbers is not None:
        sql += " AND version IN {numbers:Array(Int64)}"
    sql += " ORDER BY version DESC"
    rows = list(query_by_ids(client, sql, list(names), parameters={"numbers": list(numbers or [])}).named_results())
    for row in rows:
        row["name"] = names[row["registered_model_id"]]
    return rows


def versions(client: Client, model: dict[str, Any], numbers: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Live versions of a live model (a row of registered_models_view): all, or those numbered; newest first."""
    rows = _live_version_rows(client, {model["registered_model_id"]: model["name"]}, numbers)
    return _version_shapes(client, rows)


def _latest(versions: list[dict[str, Any]], stages: Sequence[str]) -> list[dict[str, Any]]:
    """Per stage, its highest version; the stages in MLflow's order: as its server folds the versions,
    oldest first, into a dict (a stage keeps the place of its lowest version)."""
    latest: dict[str, dict[str, Any]] = {}
    for version in reversed(versions):  # `versions` come newest first
        latest[version["current_stage"]] = version
    return [version for stage, version in latest.items() if stage in stages]


def latest_versions(client: Client, model: dict[str, Any], stages: Sequence[str]) -> list[dict[str, Any]]:
    """Per stage asked for, the version with the highest number in it (MLflow's get-latest-versions)."""
    return _latest(versions(client, model), stages)


def _model_shapes(client: Client, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MLflow's RegisteredModel, with its latest version per stage, tags and aliases (a few queries
    for a whole page, not per model)."""
    ids = [r["registered_model_id"] for r in rows]
    tags: dict[str, list[dict[str, str]]] = {}
    aliases: dict[str, list[dict[str, str]]] = {}
    held: dict[str, list[dict[str, Any]]] = {}
    if ids:
        for model, key, value in query_by_ids(
            client,
            "SELECT registered_model_id, key, value FROM registered_model_tags_view "
            "WHERE registered_model_id IN {ids:Array(String)} ORDER BY key",
            ids,
        ).result_rows:
            tags.setdefault(model, []).append({"key": key, "value": value})
        alias_rows = _alias_rows(client, ids)
        for model, alias, number in alias_rows:
            aliases.setdefault(model, []).append({"alias": alias, "version": str(number)})
        version_rows = _live_version_rows(client, {r["registered_model_id"]: r["name"] for r in rows}, None)
        for row, version in zip(version_rows, _version_shapes(client, version_rows, alias_rows), strict=True):
            held.setdefault(row["registered_model_id"], []).append(version)
    return [
        {
            "name": r["name"],
            "creation_timestamp": r["creation_time"],
            "last_updated_timestamp": r["last_update_time"],
            "user_id": r["user_id"],
            "description": r["description"],
            "latest_versions": _latest(held.get(r["registered_model_id"], []), STAGES),
            "tags": tags.get(r["registered_model_id"], []),
            "aliases": aliases.get(r["registered_model_id"], []),
        }
        for r in rows
    ]


def model_shape(client: Client, row: dict[str, Any]) -> dict[str, Any]:
    """One model as MLflow shows it (a row of registered_models_view)."""
    return _model_shapes(client, [row])[0]


def search_models(
    client: Client, filter_string: str | None, order_by: Sequence[str], max_results: int, page_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows, token = _page(client, compile_registered_model_search(filter_string, order_by, max_results, page_token))
    return _model_shapes(client, rows), token


def search_versions(
    client: Client, filter_string: str | None, order_by: Sequence[str], max_results: int, page_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows, token = _page(client, compile_model_version_search(filter_string, order_by, max_results, page_token))
    return _version_shapes(client, rows), token


def _page(client: Client, query: Query) -> tuple[list[dict[str, Any]], str | None]:
    rows = _rows(client, query.sql, **query.parameters)
    token = encode_page_token(query.offset + query.max_results) if len(rows) > query.max_results else None
    return rows[: query.max_results], token


# Every alias and stage change of a model, and the version and model events around them, in log order.
_HISTORY = """
SELECT event_time, seq, kind, version, alias, stage, name, user FROM (
    SELECT event_time, seq, if(version > 0, 'alias_set', 'alias_deleted') AS kind, version, alias,
        '' AS stage, '' AS name, user
    FROM registered_model_aliases FINAL WHERE registered_model_id = {id:String}
    UNION ALL
    SELECT event_time, seq, multiIf(kind = 'stage', 'stage_transitioned', kind = 'created', 'version_created',
        'version_deleted'), version, '', stage, '', user
    FROM model_version_events FINAL WHERE registered_model_id = {id:String} AND kind IN ('stage', 'created', 'deleted')
        AND (kind != 'created' OR (version, seq) IN (
            SELECT version, min(seq) FROM model_version_events
            WHERE registered_model_id = {id:String} AND kind = 'created' GROUP BY version))
    UNION ALL
    SELECT event_time, seq, concat('model_', kind), 0, '', '', coalesce(name, ''), user
    FROM registered_model_events FINAL
    WHERE registered_model_id = {id:String} AND kind IN ('created', 'renamed', 'deleted')
) ORDER BY event_time, seq
"""


def history(client: Client, model_id: str) -> list[dict[str, Any]]:
    """Each change with its time (ms) and user; alias and stage changes also say what they replaced
    (previous_version, previous_stage)."""
    aliases: dict[str, int] = {}
    stages: dict[int, str] = {}
    out: list[dict[str, Any]] = []
    for time, _, kind, version, alias, stage, name, user in client.query(
        _HISTORY, parameters={"id": model_id}
    ).result_rows:
        entry: dict[str, Any] = {"time": time, "event": kind, "user": user}
        if kind.startswith("model_"):
            entry["name"] = name
        elif kind.startswith("alias_"):
            entry["alias"] = alias
            entry["version"] = str(version) if version else None
            entry["previous_version"] = str(aliases[alias]) if aliases.get(alias) else None
            aliases[alias] = version
        else:
            entry["version"] = str(version)
            if kind == "version_created":
                stages[version] = "None"
            elif kind == "stage_transitioned":
                entry |= {"stage": stage, "previous_stage": stages.get(version, "None")}
                stages[version] = stage
        out.append(entry)
    return out


def gate_decisions(client: Client, model_id: str) -> list[dict[str, Any]]:
    """Every decision of the model's gates, oldest first, as the history shows them."""
    rows = client.query(
        "SELECT event_time, kind, target, version, current_version, condition, allowed, checks, user "
        "FROM gate_decisions FINAL WHERE registered_model_id = {id:String} ORDER BY event_time, seq",
        parameters={"id": model_id},
    ).named_results()
    return [
        {
            "time": r["event_time"],
            "event": "gate_allowed" if r["allowed"] else "gate_refused",
            "user": r["user"],
            "kind": r["kind"],
            "target": r["target"],
            "version": str(r["version"]),
            "current_version": None if r["current_version"] is None else str(r["current_version"]),
            "condition": r["condition"],
            "checks": json.loads(r["checks"]),
        }
        for r in rows
    ]


_DEPLOYMENTS = (
    "SELECT environment, event_time, version, note, user FROM model_deployments FINAL "
    "WHERE registered_model_id = {id:String} ORDER BY event_time, seq"
)


def deployment_history(client: Client, model_id: str) -> list[dict[str, Any]]:
    """Every deployment report of the model, oldest first, as the history shows them (with the version
    the environment served before)."""
    served: dict[str, int] = {}
    out = []
    for environment, time, version, note, user in client.query(_DEPLOYMENTS, parameters={"id": model_id}).result_rows:
        before = served.get(environment)
        out.append(
            {
                "time": time,
                "event": "deployed" if version else "undeployed",
                "user": user,
                "environment": environment,
                "version": str(version) if version else None,
                "previous_version": str(before) if before else None,
                "note": note,
            }
        )
        served[environment] = version
    return out


def deployments(client: Client, model_id: str) -> list[dict[str, Any]]:
    """Per environment where a version serves now: the version, since when, reported by whom."""
    now: dict[str, dict[str, Any]] = {}
    for e in deployment_history(client, model_id):
        if e["event"] == "deployed":
            now[e["environment"]] = {k: e[k] for k in ("environment", "version", "note", "user")} | {"since": e["time"]}
        else:
            now.pop(e["environment"], None)
    return [now[env] for env in sorted(now)]


def alias_at(client: Client, model_id: str, alias: str, at: int) -> dict[str, Any] | None:
    """The alias's last change at or before `at` (ms): the version it named then (None: none), when
    and by whom it was set; None if it never existed by then."""
    rows = client.query(
        "SELECT argMax(version, (event_time, seq)), max(event_time), argMax(user, (event_time, seq)), count() "
        "FROM registered_model_aliases FINAL WHERE registered_model_id = {id:String} AND alias = {alias:String} "
        "AND event_time <= {at:Int64}",
        parameters={"id": model_id, "alias": alias, "at": at},
    ).result_rows
    version, changed_at, user, count = rows[0]
    if not count:
        return None
    return {"version": str(version) if version else None, "changed_at": changed_at, "changed_by": user}
