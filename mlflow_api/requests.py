"""MLflow's write requests: their JSON bodies (protobuf JSON, as service.proto names the fields) and
the input rules MLflow's server applies before it stores anything."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field

from runstream.base.errors import invalid
from runstream.mlflow_api import shapes
from runstream.schemas.events import DEFAULT_EXPERIMENT_ID
from runstream.store.search.sql import MAX_RESULTS

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_BYTES = 1_000_000
_NAME = re.compile(r"^[/\w.\- :]*$")  # MLflow's rule for metric, param and tag names (POSIX)

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


class KeyValue(BaseModel):
    key: str
    value: str = ""


class MetricIn(BaseModel):
    key: str
    value: float
    timestamp: Int64
    step: Int64 = 0
    # MLflow 3: a metric of a logged model (its evaluation), for a dataset or none
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class DatasetIn(BaseModel):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInputIn(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: DatasetIn


class RunRef(BaseModel):
    run_id: str | None = None
    run_uuid: str | None = None  # MLflow's older name for run_id; clients still send both

    @property
    def id(self) -> str:
        run_id = self.run_id or self.run_uuid
        if not run_id:
            raise invalid("Missing value for required parameter 'run_id'")
        return run_id


class CreateExperiment(BaseModel):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentRef(BaseModel):
    experiment_id: str


class UpdateExperiment(ExperimentRef):
    new_name: str


class ExperimentTag(ExperimentRef):
    key: str
    value: str = ""


class DeleteExperimentTag(ExperimentRef):
    key: str


class CreateRun(BaseModel):
    experiment_id: str = DEFAULT_EXPERIMENT_ID
    user_id: str = ""
    run_name: str | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: RunStatus | None = None
    end_time: Int64 | None = None
    run_name: str | None = None


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef):
    key: str
    value: str


class SetTag(RunRef):
    key: str
    value: str


class DeleteTag(RunRef):
    key: str


class LogBatch(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class ModelInputIn(BaseModel):
    model_id: str


class LogInputs(RunRef):
    datasets: list[DatasetInputIn] = Field(default_factory=list)
    models: list[ModelInputIn] = Field(default_factory=list)


def check_name(kind: str, name: str) -> None:
    """MLflow's rule: names are treated as file paths in places, so they must be plain relative ones."""
    if not _NAME.match(name):
        raise invalid(
            f"Invalid {kind} name: {name!r}. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(("..", "/")):
        raise invalid(f"Invalid {kind} name: {name!r}. It would resolve to {norm!r} as a path.")


def check_batch_limit(what: str, limit: int, count: int) -> None:
    if count > limit:
        raise invalid(
            f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
            f"Please split up {what} across multiple requests and try again."
        )


class Entry(Protocol):
    key: str
    value: str


def cut(items: Iterable[Entry], limit: int) -> list[KeyValue]:
    """Values past `limit` characters cut to it, as MLflow 3 stores a run's long params and tags
    (MLFLOW_TRUNCATE_LONG_VALUES, on by default: autologged configs often pass 6,000 characters)
    where the event contract refuses them."""
    return [KeyValue(key=item.key, value=item.value[:limit]) for item in items]


def distinct_params(params: Iterable[KeyValue]) -> dict[str, str]:
    """MLflow drops exact repeats within a batch and refuses a key repeated with another value."""
    out: dict[str, str] = {}
    for p in params:
        if out.setdefault(p.key, p.value) != p.value:
            raise invalid(
                f"Duplicate parameter keys have been submitted: [{p.key!r}]. Please ensure the request "
                "contains only one param value per param key."
            )
    return out


MAX_BULK_RUNS = 100
MAX_DATASET_EXPERIMENTS = 20  # MLflow's limit on search-datasets
MAX_BULK_RESULTS = 2500


def view(view_type: str | int | None) -> str:
    found = shapes.VIEW_TYPES.get(str(view_type or "ACTIVE_ONLY"))
    if found is None:
        raise invalid(f"invalid view type {view_type!r}: ACTIVE_ONLY, DELETED_ONLY or ALL")
    return found


class SearchExperiments(BaseModel):
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: str | int | None = None


class SearchDatasets(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)


class SearchRuns(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: str | int | None = None
    max_results: int = Field(1000, ge=1, le=MAX_RESULTS)
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None
