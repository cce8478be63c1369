"""MLflow's GraphQL endpoint (`/graphql`), what MLflow's web UI loads run and experiment pages and
sampled metric charts with. Each root field is answered by the REST route of the same message, called
in-process with the caller's credentials: the answers, access checks and read-your-writes are the
REST routes' own. An error a route answers becomes the field's `apiError` (HTTP 200), as MLflow's
server reports it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from graphql import GraphQLObjectType, GraphQLResolveInfo, build_schema, graphql

from runstream.base.errors import invalid
from runstream.base.responses import json_response

SCHEMA = build_schema((Path(__file__).parent / "schema.graphql").read_text())

MAX_QUERY_CHARS = 100_000
_CAMEL_HUMP = re.compile(r"_([a-z0-9])")
_SNAKE_HUMP = re.compile(r"(?<!^)([A-Z])")

# Root field -> the REST route answering it (under /api/2.0/mlflow/).
_ROUTES = {
    "mlflowGetExperiment": ("GET", "experiments/get"),
    "mlflowGetMetricHistoryBulkInterval": ("GET", "metrics/get-history-bulk-interval"),
    "mlflowGetRun": ("GET", "runs/get"),
    "mlflowListArtifacts": ("GET", "artifacts/list"),
    "mlflowSearchModelVersions": ("GET", "model-versions/search"),
    "mlflowSearchRuns": ("POST", "runs/search"),
    "mlflowSearchDatasets": ("POST", "experiments/search-datasets"),
}


def camel(value: Any) -> Any:
    """MLflow's protobuf JSON (snake_case fields) as its GraphQL types name them (camelCase). Every
    integer there is an int64, which those types carry as a LongString (JavaScript would round it)."""
    if isinstance(value, dict):
        return {_CAMEL_HUMP.sub(lambda m: m[1].upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def snake(args: dict[str, Any]) -> dict[str, Any]:
    return {_SNAKE_HUMP.sub(r"_\1", k).lower(): v for k, v in args.items() if v is not None}


class Loopback:
    """The REST routes of the app serving this request, called in-process as its caller."""

    def __init__(self, request: Request) -> None:
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app), base_url=str(request.base_url))
        self.headers = {"authorization": auth} if (auth := request.headers.get("authorization")) else {}
        self.experiments: dict[str, dict[str, Any]] = {}  # one GET per experiment per query

    async def call(self, method: str, route: str, args: dict[str, Any]) -> dict[str, Any]:
        url = f"/api/2.0/mlflow/{route}"
        if method == "GET":
            response = await self.client.get(url, params=args, headers=self.headers)
        else:
            response = await self.client.post(url, json=args, headers=self.headers)
        body = response.json()
        if response.is_error:
            return {"apiError": {"code": body.get("error_code"), "message": body.get("message")}}
        return dict(camel(body))

    async def experiment(self, experiment_id: str) -> dict[str, Any]:
        if experiment_id not in self.experiments:
            self.experiments[experiment_id] = await self.call(
                "GET", "experiments/get", {"experiment_id": experiment_id}
            )
        return self.experiments[experiment_id]


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[Loopback]
else:  # graphql-core 3.2 (what MLflow's graphene takes) has no type parameter
    Info = GraphQLResolveInfo


def _root(method: str, route: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def resolve(_: None, info: Info, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return await info.context.call(method, route, snake(input or {}))

    return resolve


async def _run_experiment(run: dict[str, Any], info: Info) -> dict[str, Any] | None:
    found = await info.context.experiment(run["info"]["experimentId"])
    experiment: dict[str, Any] | None = found.get("experiment")
    return experiment


async def _run_model_versions(run: dict[str, Any], info: Info) -> list[dict[str, Any]]:
    found = await info.context.call("GET", "model-versions/search", {"filter": f"run_id = '{run['info']['runId']}'"})
    return list(found.get("modelVersions") or [])


def _bind() -> None:
    for root in (SCHEMA.query_type, SCHEMA.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            field.resolve = _root(*_ROUTES[name])
    run = SCHEMA.type_map["MlflowRunExtension"]
    assert isinstance(run, GraphQLObjectType)
    run.fields["experiment"].resolve = _run_experiment
    run.fields["modelVersions"].resolve = _run_model_versions


_bind()


routes = APIRouter(tags=["mlflow"])


async def answer(request: Request, query: Any, variables: Any, operation: Any) -> Response:
    if not isinstance(query, str) or not query.strip():
        raise invalid("a GraphQL request needs its query (a string)")
    if len(query) > MAX_QUERY_CHARS:
        raise invalid(f"the GraphQL query is over {MAX_QUERY_CHARS} characters")
    if variables is not None and not isinstance(variables, dict):
        raise invalid("GraphQL variables must be an object")
    loopback = Loopback(request)
    async with loopback.client:
        result = await graphql(
            SCHEMA,
            query,
            context_value=loopback,
            variable_values=variables,
            operation_name=operation if isinstance(operation, str) else None,
        )
    errors = [error.message for error in result.errors] if result.errors else None
    return json_response({"data": result.data, "errors": errors})


@routes.post("/graphql", summary="MLflow's GraphQL API (what its web UI loads runs and experiments with)")
async def post_graphql(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise invalid(f"the GraphQL request is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise invalid("a GraphQL request is a JSON object with its query")
    return await answer(request, body.get("query"), body.get("variables"), body.get("operationName"))


@routes.get("/graphql", summary="MLflow's GraphQL API, the query in the query string")
async def get_graphql(
    request: Request, query: str, variables: str | None = None, operationName: str | None = None
) -> Response:
    try:
        parsed = orjson.loads(variables) if variables else None
    except orjson.JSONDecodeError as exc:
        raise invalid(f"GraphQL variables are not JSON: {exc}") from exc
    return await answer(request, query, parsed, operationName)
