"""`runstream.Client`: reads through the read API (paging done for the caller)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload
from urllib.parse import quote

import httpx
import numpy as np
import orjson
import pyarrow as pa

from runstream.schemas.wire import ARROW_STREAM, read_arrow, split_series
from runstream.sdk import written
from runstream.sdk.artifacts import ArtifactClient
from runstream.sdk.transport import api_uri, http_auth, http_retrying

HISTORY_PAGE = 500_000
FRAME_PAGE = 10_000  # as mlflow.search_runs pages: fewer calls, each one read of the page's details


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class MetricPoint:
    step: int
    value: float
    timestamp: int
    rank: int


class MetricHistory(Sequence[MetricPoint]):
    """Every point of one metric, held as numpy columns; points are made only when indexed."""

    def __init__(self, steps: np.ndarray, values: np.ndarray, timestamps: np.ndarray, ranks: np.ndarray) -> None:
        self.steps, self.values, self.timestamps, self.ranks = steps, values, timestamps, ranks

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, i: int) -> MetricPoint: ...
    @overload
    def __getitem__(self, i: slice) -> MetricHistory: ...
    def __getitem__(self, i: int | slice) -> MetricPoint | MetricHistory:
        if isinstance(i, slice):
            return MetricHistory(self.steps[i], self.values[i], self.timestamps[i], self.ranks[i])
        return MetricPoint(int(self.steps[i]), float(self.values[i]), int(self.timestamps[i]), int(self.ranks[i]))

    def __iter__(self) -> Iterator[MetricPoint]:
        for i in range(len(self)):
            yield self[i]

    def to_arrow(self) -> pa.Table:
        """Columns step, value, timestamp (ms since the epoch), rank, without a copy."""
        return pa.table({"step": self.steps, "value": self.values, "timestamp": self.timestamps, "rank": self.ranks})

    def to_pandas(self) -> Any:
        """A pandas DataFrame (pandas is the caller's to install), columns as in to_arrow."""
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """A polars DataFrame (polars is the caller's to install), columns as in to_arrow."""
        import polars

        return polars.from_arrow(self.to_arrow())


_PREFIXES = {"metrics": 0, "params": 1, "tags": 2}


def _frame_row(run: dict[str, Any]) -> dict[str, Any]:
    row = {k: run[k] for k in ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")}
    row.update({f"metrics.{k}": float(m["value"]) for k, m in run["metrics"].items()})  # "NaN" as JSON writes it
    row.update({f"params.{k}": v for k, v in run["params"].items()})
    row.update({f"tags.{k}": v for k, v in {"mlflow.runName": run["run_name"], **run["tags"]}.items()})
    return row


class Client:
    def __init__(self, tracking_uri: str | None = None, timeout: float = 60.0, retry_for_s: float = 120.0) -> None:
        """Reads that meet a restarting server or a 503 (e.g. waiting on a consistency token) are
        retried with backoff for up to `retry_for_s` seconds."""
        self._uri = api_uri(tracking_uri)
        self._http = httpx.Client(base_url=self._uri, timeout=timeout, auth=http_auth())
        self._retry_for_s = retry_for_s
        self._artifacts = ArtifactClient(self._uri, retry_for_s=retry_for_s, auth=http_auth())

    def _get(self, path: str, **params: Any) -> Any:
        return orjson.loads(self._request("GET", path, None, params))

    def _post(self, path: str, body: dict[str, Any], **params: Any) -> Any:
        return orjson.loads(self._request("POST", path, body, params))

    def _arrow(self, method: str, path: str, body: dict[str, Any] | None, **params: Any) -> tuple[pa.Table, Any]:
        """Large columns come as Arrow IPC: no text to write or parse."""
        return read_arrow(self._request(method, path, body, params, {"Accept": ARROW_STREAM}))

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> bytes:
        if "after" in params and params["after"] is None:  # a read that can wait: for this process's writes
            params = {**params, "after": written.token_for(self._uri)}
        query = {k: v for k, v in params.items() if v is not None}
        for attempt in http_retrying(self._retry_for_s):
            with attempt:
                response = self._http.request(method, path, params=query, json=body, headers=headers)
                if response.status_code == 404:
                    raise NotFound(response.json().get("message", path))
                response.raise_for_status()
        return response.content

    def get_experiment(self, experiment_id: str, after: str | None = None) -> dict[str, Any]:
        return self._get(f"/api/v1/experiments/{experiment_id}", after=after)  # type: ignore[no-any-return]

    def get_experiment_by_name(self, name: str, after: str | None = None) -> dict[str, Any] | None:
        found = self._get("/api/v1/experiments", name=name, view="all", after=after)["experiments"]
        return found[0] if found else None

    def list_experiments(
        self, view: str = "active", run_counts: bool = False, after: str | None = None
    ) -> list[dict[str, Any]]:
        """With `run_counts`, each experiment carries `run_count` (its runs in the same view)."""
        found = self._get("/api/v1/experiments", view=view, run_counts=str(run_counts).lower(), after=after)
        return found["experiments"]  # type: ignore[no-any-return]

    def get_experiment_keys(self, experiment_id: str, after: str | None = None) -> dict[str, list[str]]:
        """The param, tag and metric keys any run of the experiment has: {"params", "tags", "metrics"}."""
        return self._get(f"/api/v1/experiments/{experiment_id}/keys", after=after)  # type: ignore[no-any-return]

    def get_read_position(self) -> str:
        """A consistency token of what is queryable now; it changes when newly written data is."""
        return self._get("/api/v1/read-position")["token"]  # type: ignore[no-any-return]

    def count_runs(
        self, experiment_ids: list[str], filter_string: str = "", view: str = "active", after: str | None = None
    ) -> int:
        """How many runs an MLflow filter matches."""
        body = {
            "experiment_ids": experiment_ids,
            "filter": filter_string,
            "view": view,
            "max_results": 1,
            "count": True,
        }
        return self._post("/api/v1/runs/search", body, after=after)["total_count"]  # type: ignore[no-any-return]

    def get_run(self, run_id: str, after: str | None = None) -> dict[str, Any]:
        return self._get(f"/api/v1/runs/{run_id}", after=after)  # type: ignore[no-any-return]

    def list_runs(
        self, experiment_ids: list[str], view: str = "active", after: str | None = None
    ) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        token = None
        while True:
            page = self._get("/api/v1/runs", experiment_id=experiment_ids, view=view, page_token=token, after=after)
            runs += page["runs"]
            token = page["next_page_token"]
            if not token:
                return runs

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_points: int | None = None,
        x_axis: str = "step",
        x_min: int | None = None,
        x_max: int | None = None,
        rank: int | None = None,
        per_rank: bool = False,
        after: str | None = None,
    ) -> Any:
        """Every point (a MetricHistory), or with `max_points` the downsampled series: a dict of bucket
        columns (x_first/first, x_last/last, min/x_of_min, max/x_of_max, mean, count) per rank or merged."""
        if max_points is None:
            return self._raw_history(run_id, key, after)
        result = self.compare_runs([run_id], [key], max_points, x_axis, x_min, x_max, rank, per_rank, after)
        return result["series"] if per_rank else (result["series"] or [{}])[0]

    def compare_runs(
        self,
        run_ids: list[str],
        keys: list[str],
        max_points: int = 1000,
        x_axis: str = "step",
        x_min: int | None = None,
        x_max: int | None = None,
        rank: int | None = None,
        per_rank: bool = False,
        after: str | None = None,
    ) -> dict[str, Any]:
        """Many runs by keys, each downsampled onto one common x grid: the grid, and per series its
        bucket columns as numpy arrays."""
        body = {
            "run_ids": run_ids,
            "keys": keys,
            "max_points": max_points,
            "x_axis": x_axis,
            "x_min": x_min,
            "x_max": x_max,
            "rank": rank,
            "per_rank": per_rank,
        }
        table, grid = self._arrow("POST", "/api/v1/series", body, after=after)
        return {**grid, "series": split_series(table, run_ids, keys, per_rank, column=lambda c: c)}

    def get_run_summaries(
        self, run_ids: list[str], keys: list[str] | None = None, after: str | None = None
    ) -> list[dict[str, Any]]:
        """Per run and key: last value and step, min, max, count (a dashboard's runs table)."""
        return self._post("/api/v1/runs/summary", {"run_ids": run_ids, "keys": keys}, after=after)["summaries"]  # type: ignore[no-any-return]

    def aggregate_runs(
        self,
        run_ids: list[str],
        key: str,
        group_by: list[str],
        max_points: int = 500,
        x_axis: str = "step",
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Per group of runs (equal values of group_by, e.g. ["params.lr"]) and x bucket: mean, std,
        min, max, median and count across the group's runs."""
        body = {"run_ids": run_ids, "key": key, "group_by": group_by, "max_points": max_points, "x_axis": x_axis}
        return self._post("/api/v1/aggregate", body, after=after)["groups"]  # type: ignore[no-any-return]

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int = 1000,
        view: str = "active",
        page_token: str | None = None,
        offset: int | None = None,
        after: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of runs matching an MLflow filter; pass the returned token for the next page, or
        an `offset` (the row to start at) instead."""
        body = {
            "experiment_ids": experiment_ids,
            "filter": filter_string,
            "order_by": order_by or [],
            "max_results": max_results,
            "view": view,
            "page_token": page_token,
            "offset": offset,
        }
        page = self._post("/api/v1/runs/search", body, after=after)
        return page["runs"], page["next_page_token"]

    def search_runs_frame(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = None,
        view: str = "active",
    ) -> Any:
        """Every matching run (paged for the caller) as a pandas DataFrame shaped as
        `mlflow.search_runs` returns it: run_id, experiment_id, status, artifact_uri, start_time and
        end_time (UTC timestamps), then `metrics.<key>` (latest value), `params.<key>`, `tags.<key>`."""
        import pandas

        rows: list[dict[str, Any]] = []
        token = None
        while max_results is None or len(rows) < max_results:
            page_size = FRAME_PAGE if max_results is None else min(FRAME_PAGE, max_results - len(rows))
            runs, token = self.search_runs(experiment_ids, filter_string, order_by, page_size, view, token)
            rows += [_frame_row(run) for run in runs]
            if not token:
                break
        columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
        frame = pandas.DataFrame(rows)
        if frame.empty:
            return pandas.DataFrame(columns=columns)
        for time in ("start_time", "end_time"):
            frame[time] = pandas.to_datetime(frame[time], unit="ms", utc=True)
        prefixed = sorted((c for c in frame.columns if c not in columns), key=lambda c: (_PREFIXES[c.split(".")[0]], c))
        return frame[columns + prefixed]

    def search_experiments(
        self, filter_string: str = "", order_by: list[str] | None = None, view: str = "active", after: str | None = None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = None
        while True:
            body = {"filter": filter_string, "order_by": order_by or [], "view": view, "page_token": token}
            page = self._post("/api/v1/experiments/search", body, after=after)
            found += page["experiments"]
            token = page["next_page_token"]
            if not token:
                return found

    def get_child_runs(self, run_id: str, after: str | None = None) -> list[str]:
        return self._get(f"/api/v1/runs/{run_id}/children", after=after)["run_ids"]  # type: ignore[no-any-return]

    def get_parent_runs(self, run_id: str, after: str | None = None) -> list[str]:
        """The parent chain, nearest first."""
        return self._get(f"/api/v1/runs/{run_id}/parents", after=after)["run_ids"]  # type: ignore[no-any-return]

    def _raw_history(self, run_id: str, key: str, after: str | None) -> MetricHistory:
        pages: list[pa.Table] = []
        token = None
        while True:
            page, meta = self._arrow(
                "GET",
                f"/api/v1/runs/{run_id}/metric-history",
                None,
                key=key,
                max_results=HISTORY_PAGE,
                page_token=token,
                after=after,
            )
            pages.append(page)
            token = meta["next_page_token"]
            if not token:
                break
        table = pa.concat_tables(pages)
        steps, timestamps, values, ranks = (
            table.column(c).to_numpy() for c in ("steps", "timestamps", "values", "ranks")
        )
        return MetricHistory(steps, values, timestamps, ranks.astype(np.int64))

    def get_model_history(self, name: str) -> list[dict[str, Any]]:
        """Every change of a registered model's aliases and stages (and its versions' creation and
        deletion, its creation, renames and deletion), oldest first: time (ms), event, user, and
        alias / version / previous_version or stage / previous_stage."""
        return self._get(f"/api/v1/registered-models/{quote(name, safe='')}/history")["events"]  # type: ignore[no-any-return]

    def record_deployment(self, name: str, version: str | int, environment: str, note: str = "") -> None:
        """Reports that this version of the registered model now serves in `environment` (a deploy
        tool's hook)."""
        body = {"environment": environment, "version": str(version), "note": note}
        self._post(f"/api/v1/registered-models/{quote(name, safe='')}/deployments", body)

    def remove_deployment(self, name: str, environment: str, note: str = "") -> None:
        """Reports that no version of the registered model serves in `environment` any more."""
        path = f"/api/v1/registered-models/{quote(name, safe='')}/deployments/{quote(environment, safe='')}"
        self._request("DELETE", path, {"note": note}, {})

    def get_deployments(self, name: str) -> list[dict[str, Any]]:
        """Where a version of the model serves now: environment, version, since (ms), user, note."""
        return self._get(f"/api/v1/registered-models/{quote(name, safe='')}/deployments")["deployments"]  # type: ignore[no-any-return]

    def get_alias_at(self, name: str, alias: str, at: int | None = None) -> dict[str, Any]:
        """The version (None: deleted by then) the alias named at `at` (ms since the epoch; default
        now), when it was last changed before that and by whom. NotFound if it did not exist yet."""
        path = f"/api/v1/registered-models/{quote(name, safe='')}/aliases/{quote(alias, safe='')}"
        return self._get(path, at=at)  # type: ignore[no-any-return]

    def list_artifacts(self, run_id: str, path: str = "", recursive: bool = False) -> list[dict[str, Any]]:
        """A folder's entries (files with size and sha256, sub-folders with is_dir), or with
        `recursive` every file under it."""
        return self._artifacts.list(run_id, path, recursive)

    def download_artifacts(self, run_id: str, path: str, dst: str | os.PathLike[str]) -> Path:
        """Downloads one file to `dst`, or a folder into `dst`; each file is checked against its
        recorded sha256 (runstream.ArtifactCorrupted if it differs)."""
        return self._artifacts.download(run_id, path, Path(dst))

    def read_artifact(self, run_id: str, path: str, start: int = 0, length: int | None = None) -> bytes:
        """A byte range of one artifact (to its end without `length`)."""
        return self._artifacts.read(run_id, path, start, length)

    def close(self) -> None:
        self._http.close()
        self._artifacts.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
