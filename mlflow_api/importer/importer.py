"""The import's course: every experiment, then each run whole (creation, params, inputs, every metric
point, artifacts, status), then MLflow 3's logged models (with their files), then the model registry;
then what runstream holds, counted against the source. A run or logged model is recorded in the state
file once all its events are acknowledged, so an interrupted import started again carries on with the
next one, and a finished one changes nothing."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import httpx

from runstream.eventlog.base import Positions, format_token, merge_positions
from runstream.mlflow_api.importer import events
from runstream.schemas.codec import encode
from runstream.schemas.events import experiment_id_for_name, partition_key
from runstream.sdk.artifacts import ArtifactClient
from runstream.sdk.client import Client
from runstream.sdk.transport import api_uri, http_auth, transport_for

Artifacts = Literal["copy", "reference"]
Progress = Callable[[int, int, int], None]
"""Told (runs imported, runs in the source, metric points so far) after each run."""

SEND_BYTES = 32 << 20  # events buffered before a send
SEND_RUNS = 200  # runs whose events go in one send at most (recorded as done after it), by default
PAGE = 1000


class SourceUnavailable(RuntimeError):
    """The MLflow store (or runstream) cannot be reached or read: nothing more was imported."""


@dataclass
class Counts:
    experiments: int = 0
    runs: int = 0
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    artifacts: int = 0
    logged_models: int = 0
    registered_models: int = 0
    model_versions: int = 0


@dataclass
class Report:
    source: Counts = field(default_factory=Counts)
    runstream: Counts = field(default_factory=Counts)
    imported_runs: int = 0  # in this invocation (the others were done before)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.source == self.runstream


@dataclass
class State:
    """Which runs (with their metric points in the source) and logged models (0 points) are in runstream
    already: one JSON line each in a file beside the command, appended once its events are acknowledged."""

    path: Path
    done: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State:
        state = cls(path)
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line, torn by a crash: that run is imported again
                state.done[entry["run"]] = entry["points"]
        return state

    def record(self, runs: dict[str, int]) -> None:
        with self.path.open("a") as out:
            out.writelines(json.dumps({"run": run_id, "points": n}) + "\n" for run_id, n in runs.items())
            out.flush()
            os.fsync(out.fileno())
        self.done.update(runs)


def check_source(source: str) -> None:
    """Refuses a source that is not there (MLflow's client would create an empty store, or retry a dead
    server for minutes)."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        try:
            httpx.get(f"{source.rstrip('/')}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=10)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"cannot reach the MLflow server at {source}: {exc}") from exc
    elif parsed.scheme == "sqlite":
        path = source.removeprefix("sqlite:///")  # sqlite:///relative or sqlite:////absolute
        if not Path(path).is_file():
            raise SourceUnavailable(f"no MLflow database at {path}")
    elif parsed.scheme in ("", "file") and not Path(parsed.path).is_dir():
        raise SourceUnavailable(f"no mlruns folder at {parsed.path}")


class MlflowImport:
    def __init__(
        self,
        source: str,
        target: str,
        artifacts: Artifacts,
        state: State,
        progress: Progress,
        runs_per_send: int = SEND_RUNS,
    ) -> None:
        check_source(source)
        self.api = api_uri(target)
        try:
            httpx.get(f"{self.api}/health", timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"cannot reach runstream at {self.api}: {exc}") from exc
        if urlparse(source).scheme in ("", "file"):
            # MLflow 3 refuses its file store unless told: moving a mlruns folder off it is this import.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow import MlflowClient  # the source is read by MLflow's own client (seconds to load)

        self.source = source
        self.mlflow = MlflowClient(tracking_uri=source, registry_uri=source)
        self.transport = transport_for(target)
        self.copy = artifacts == "copy"
        self.files = ArtifactClient(self.api, auth=http_auth()) if self.copy else None
        self.state = state
        self.progress = progress
        self.runs_per_send = runs_per_send
        self.report = Report()
        self._positions: Positions = {}
        self._pending: list[tuple[str, bytes]] = []
        self._pending_bytes = 0
        self._pending_runs: dict[str, int] = {}  # run → its points, done once the pending events are sent
        self._with_files: list[str] = []
        self._model_folders: list[str] = []

    def _paged(self, call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        token = None
        while True:
            page = call(max_results=PAGE, page_token=token, **kwargs)
            yield from page
            token = page.token
            if not token:
                return

    def _add(self, batch: Iterator[events.Event]) -> None:
        for name, record in batch:
            message = encode(name, record)
            self._pending.append((partition_key(name, record), message))
            self._pending_bytes += len(message)
            if self._pending_bytes >= SEND_BYTES:
                self._send()

    def _send(self) -> None:
        if self._pending:
            merge_positions(self._positions, self.transport.send(self._pending))
            self._pending, self._pending_bytes = [], 0
        if self._pending_runs:
            self.state.record(self._pending_runs)
            self.report.imported_runs += len(self._pending_runs)
            self._pending_runs = {}

    def run(self) -> Report:
        from mlflow.entities import ViewType

        started = time.monotonic()
        source = self.report.source
        experiments = list(self._paged(self.mlflow.search_experiments, view_type=ViewType.ALL))
        for experiment in experiments:
            self._add(events.experiment_events(experiment, keep_locations=not self.copy))
        source.experiments = len(experiments)
        runs = [
            (run, experiment.name)
            for experiment in experiments
            for run in self._paged(
                self.mlflow.search_runs, experiment_ids=[experiment.experiment_id], run_view_type=ViewType.ALL
            )
        ]
        points_by_run: dict[str, int] = {}
        for done, (run, experiment_name) in enumerate(runs, start=1):
            points_by_run[run.info.run_id] = self._import_run(run, experiment_name)
            self.progress(done, len(runs), sum(points_by_run.values()))
        source.runs = len(runs)
        source.params = sum(len(run.data.params) for run, _ in runs)
        source.tags = sum(len(run.data.tags) for run, _ in runs)
        source.metric_points = sum(points_by_run.values())
        self._logged_models(experiments)
        for model in self._paged(self.mlflow.search_registered_models):
            versions = list(self.mlflow.search_model_versions(f"name='{_quoted(model.name)}'"))
            model = self.mlflow.get_registered_model(model.name)  # the search leaves aliases out
            self._add(events.registry_events(model, versions))
            source.registered_models += 1
            source.model_versions += len(versions)
        self._send()
        self._count(experiments)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _import_run(self, run: Any, experiment_name: str) -> int:
        """Queues one run whole (unless done before); returns its metric points in the source."""
        run_id = run.info.run_id
        if run_id in self.state.done:
            self.report.source.artifacts += self._artifacts(run, send=False)
            return self.state.done[run_id]
        self._add(events.run_events(run, experiment_name, keep_location=not self.copy))
        points = 0
        for key in run.data.metrics:
            history = self.mlflow.get_metric_history(run_id, key)
            points += len(history)
            self._add(events.metric_events(run_id, key, history))
        self.report.source.artifacts += self._artifacts(run, send=True)
        self._pending_runs[run_id] = points
        if len(self._pending_runs) >= self.runs_per_send:
            self._send()
        return points

    def _logged_models(self, experiments: list[Any]) -> None:
        """MLflow 3's logged models (then their files, which runstream takes only for a model it holds)."""
        names = {e.experiment_id: e.name for e in experiments}
        models = list(self._paged(self.mlflow.search_logged_models, experiment_ids=list(names)))
        self.report.source.logged_models = len(models)
        todo = [m for m in models if m.model_id not in self.state.done]
        for model in todo:
            name = names[model.experiment_id]
            location = _model_location(name, model.model_id) if self.copy else model.artifact_location
            self._add(events.logged_model_events(model, name, location))
        self._send()
        for model in models if self.copy else []:
            send = model.model_id not in self.state.done
            self.report.source.artifacts += self._model_files(model, names[model.experiment_id], send)
        self.state.record({m.model_id: 0 for m in todo})

    def _model_files(self, model: Any, experiment_name: str, send: bool) -> int:
        """A logged model's files, uploaded through runstream's MLflow artifact route; returns how many."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(model.artifact_location, tracking_uri=self.source)
        files = list(_walk(repo.list_artifacts))
        folder = _model_location(experiment_name, model.model_id).removeprefix("mlflow-artifacts:/")
        if files:
            self._model_folders.append(folder)
        if files and send:
            _wait_applied(self.api, format_token(self._positions))
            with tempfile.TemporaryDirectory() as tmp:
                for path in files:
                    _put_artifact(self.api, f"{folder}/{path}", Path(repo.download_artifacts(path, tmp)))
        return len(files)

    def _artifacts(self, run: Any, send: bool) -> int:
        """The run's files, copied into runstream's store when asked to; returns how many there are."""
        if self.files is None:
            return 0  # referenced in place: the runs keep MLflow's artifact locations
        run_id = run.info.run_id
        files = list(_walk(lambda path: self.mlflow.list_artifacts(run_id, path)))
        if files:
            self._with_files.append(run_id)
        if not files or not send:
            return len(files)
        with tempfile.TemporaryDirectory() as tmp:
            local = [(Path(self.mlflow.download_artifacts(run_id, path, tmp)), path) for path in files]
            stored = self.files.upload(run_id, local)
        when = run.info.end_time or run.info.start_time or 0
        self._add(events.artifact_event(run_id, s, when) for s in stored)
        return len(files)

    def _count(self, experiments: list[Any]) -> None:
        """What runstream answers once it has applied every import write, counted like the source."""
        _wait_applied(self.api, format_token(self._positions))
        client = Client(self.api)
        got = self.report.runstream
        names = {e.name for e in experiments}
        got.experiments = sum(1 for e in _mlflow_experiments(self.api) if e["name"] in names)
        ids = sorted({experiment_id_for_name(name) for name in names})
        token: str | None = None
        while True:
            runs, token = client.search_runs(ids, view="all", max_results=PAGE, page_token=token)
            got.runs += len(runs)
            got.params += sum(len(r["params"]) for r in runs)
            got.tags += sum(len(r["tags"]) for r in runs)
            run_ids = [r["run_id"] for r in runs]
            got.metric_points += sum(int(s["count"]) for s in client.get_run_summaries(run_ids)) if run_ids else 0
            if not token:
                break
        for run_id in self._with_files if self.copy else []:
            got.artifacts += sum(1 for f in client.list_artifacts(run_id, recursive=True) if not f.get("is_dir"))
        got.artifacts += sum(_mlflow_files(self.api, folder) for folder in self._model_folders)
        got.logged_models = _count_logged_models(self.api, ids)
        models = _mlflow_get(self.api, "mlflow/registered-models/search", max_results=1000).get("registered_models", [])
        got.registered_models = len(models)
        for model in models:
            filter_ = f"name='{_quoted(model['name'])}'"
            versions = _mlflow_get(self.api, "mlflow/model-versions/search", filter=filter_, max_results=10000)
            got.model_versions += len(versions.get("model_versions", []))


def _walk(listing: Callable[[str | None], list[Any]], path: str | None = None) -> Iterator[str]:
    """Every file's path under `path` of an MLflow artifact listing (its FileInfo entries)."""
    for entry in listing(path):
        if entry.is_dir:
            yield from _walk(listing, entry.path)
        else:
            yield entry.path


def _model_location(experiment_name: str, model_id: str) -> str:
    """Where a copied logged model's files are: runstream's own layout, as its server gives a new model."""
    return f"mlflow-artifacts:/{experiment_id_for_name(experiment_name)}/models/{model_id}/artifacts"


def _put_artifact(api: str, path: str, file: Path) -> None:
    with file.open("rb") as body:
        url = f"{api}/api/2.0/mlflow-artifacts/artifacts/{path}"
        httpx.put(url, content=body, auth=http_auth(), timeout=600).raise_for_status()


def _mlflow_files(api: str, folder: str) -> int:
    """How many files runstream's MLflow artifact route lists under `folder`, recursively."""
    found = _mlflow_get(api, "mlflow-artifacts/artifacts", path=folder)
    entries = found.get("files") or []
    return sum(_mlflow_files(api, f"{folder}/{e['path']}") if e["is_dir"] else 1 for e in entries)


def _count_logged_models(api: str, experiment_ids: list[str]) -> int:
    count, token = 0, None
    while True:
        body = {"experiment_ids": experiment_ids, "max_results": PAGE} | ({"page_token": token} if token else {})
        response = httpx.post(f"{api}/api/2.0/mlflow/logged-models/search", json=body, auth=http_auth(), timeout=120)
        found = response.raise_for_status().json()
        count += len(found.get("models", []))
        token = found.get("next_page_token")
        if not token:
            return count


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _wait_applied(api: str, token: str, timeout_s: float = 3600.0) -> None:
    """Returns once runstream's projector has applied the write `token` stands for (a read waits for
    it 10 s at a time, then answers a retriable 503)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(f"{api}/api/v1/experiments", params={"after": token}, auth=http_auth(), timeout=60)
        if response.status_code != 503 or time.monotonic() > deadline:
            response.raise_for_status()
            return


def _mlflow_get(api: str, route: str, **params: Any) -> dict[str, Any]:
    """GET from runstream's MLflow API (`route` under /api/2.0/)."""
    response = httpx.get(f"{api}/api/2.0/{route}", params=params, auth=http_auth(), timeout=120)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _mlflow_experiments(api: str) -> list[dict[str, Any]]:
    found = _mlflow_get(api, "mlflow/experiments/search", max_results=50000, view_type="ALL")
    return found.get("experiments", [])  # type: ignore[no-any-return]
