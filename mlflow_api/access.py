"""Per-experiment access on MLflow's API, when auth is on: the experiments a request names
(experiment_id / experiment_ids) and those of the runs it names (run_id / run_uuid / run_ids), in
its query or JSON body, and of the logged model in its path (model_id), need read access for reads
(GET, searches) and write access otherwise. An experiment created by name has no id yet: the user's
default access decides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from runstream.base.auth import Access, CurrentPrincipal, require
from runstream.base.clickhouse import ClickHouse
from runstream.store.logged_models import model_experiments
from runstream.store.queries import run_experiments

# POSTs that only read
_SEARCHES = ("/experiments/search", "/experiments/search-datasets", "/runs/search", "/logged-models/search")


def _named(query: Any, body: dict[str, Any], one: tuple[str, ...], many: str) -> list[str]:
    values = [v for name in (*one, many) for v in query.getlist(name)]
    values += [body[name] for name in one if isinstance(body.get(name), str)]
    values += [v for v in body.get(many) or [] if isinstance(v, str)]
    return values


def mlflow_access(store: ClickHouse) -> Callable[[Request, CurrentPrincipal], Awaitable[None]]:
    async def check(request: Request, principal: CurrentPrincipal) -> None:
        if principal is None:
            return
        wanted: Access = "read" if request.method == "GET" or request.url.path.endswith(_SEARCHES) else "write"
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                parsed = await request.json()  # cached: the route reads the same body
            except ValueError:
                parsed = None  # the route answers the malformed body
            body = parsed if isinstance(parsed, dict) else {}
        experiments: list[str | None] = [*_named(request.query_params, body, ("experiment_id",), "experiment_ids")]
        runs = _named(request.query_params, body, ("run_id", "run_uuid"), "run_ids")
        if runs:
            experiments += (await run_in_threadpool(run_experiments, store.client, runs)).values()
        if model_id := request.path_params.get("model_id"):
            experiments += (await run_in_threadpool(model_experiments, store.client, [model_id])).values()
        if request.url.path.endswith("/experiments/create"):
            experiments.append(None)
        require(principal, wanted, experiments)

    return check


_REGISTRY_READS = ("/registered-models/get-latest-versions",)  # a POST that only reads


async def registry_access(request: Request, principal: CurrentPrincipal) -> None:
    """Registered models belong to no experiment: the user's default access decides (read for
    lookups and searches, write for changes)."""
    reading = request.method == "GET" or request.url.path.endswith(_REGISTRY_READS)
    require(principal, "read" if reading else "write", [None])
