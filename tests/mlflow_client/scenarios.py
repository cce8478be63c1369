"""Runs under the MLflow client's own venv (tests/venvs.py), not the project's:
`python scenarios.py TRACKING_URI OUT.json PREFIX`. Each scenario drives the official client against
a runstream server and records what the client read back; the test asserts on that JSON. Experiment
names start with PREFIX, so several client versions can share one server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

Result = dict[str, Any]
SCENARIOS: dict[str, Callable[[MlflowClient], Result]] = {}
PREFIX = ""


def named(name: str) -> str:
    return PREFIX + name


def scenario(fn: Callable[[MlflowClient], Result]) -> Callable[[MlflowClient], Result]:
    SCENARIOS[fn.__name__] = fn
    return fn


def error_code(call: Callable[[], object]) -> str | None:
    """The MLflow error code the call raised, or None when it succeeded."""
    try:
        call()
    except MlflowException as exc:
        code: str = exc.error_code
        return code
    return None


def failure(call: Callable[[], object]) -> str | None:
    """The MLflow error code and message the call raised (the message carries the server's answer
    where the client wraps it), or None when it succeeded."""
    try:
        call()
    except MlflowException as exc:
        return f"{exc.error_code}: {exc.message}"
    return None


def run_json(run: Any) -> Result:
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "lifecycle_stage": run.info.lifecycle_stage,
        "experiment_id": run.info.experiment_id,
        "end_time_set": run.info.end_time is not None,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": run.data.tags,
        "datasets": [
            {"name": d.dataset.name, "digest": d.dataset.digest, "tags": {t.key: t.value for t in d.tags}}
            for d in run.inputs.dataset_inputs
        ],
    }


@scenario
def fluent_tracking(client: MlflowClient) -> Result:
    experiment = mlflow.set_experiment(named("compat-fluent"))
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"optimizer": "adam", "layers": 3})
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "ds")
        mlflow.set_tags({"stage": "dev", "doomed": "yes"})
        mlflow.delete_tag("doomed")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 1.5)
    history = client.get_metric_history(parent.info.run_id, "loss")
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {
        "experiment_id": experiment.experiment_id,
        "parent": run_json(client.get_run(parent.info.run_id)),
        "child": run_json(client.get_run(child.info.run_id)),
        "history": [(m.step, m.value) for m in history],
        "children": [r.info.run_name for r in children],
    }


@scenario
def default_experiment(client: MlflowClient) -> Result:
    default = client.get_experiment_by_name("Default")  # a fresh MLflow server has it too
    run = client.create_run("0")  # what mlflow.start_run() does when no experiment is set
    found = client.get_run(run.info.run_id)
    return {
        "default": [default.experiment_id, default.lifecycle_stage] if default else None,
        "experiment_id": found.info.experiment_id,
        "run_name": found.info.run_name,
        "status": found.info.status,
    }


@scenario
def search_runs(client: MlflowClient) -> Result:
    experiment_id = client.create_experiment(named("compat-search"), tags={"purpose": "search"})
    for i, (opt, acc) in enumerate([("adam", 0.5), ("sgd", 0.9), ("adam", 0.7), ("adam", 0.1), ("adam", 0.95)]):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", acc, 0, 0)],
            params=[Param("opt", opt), Param("i", str(i))],
            tags=[RunTag("kind", "search")],
        )
        client.set_terminated(run.info.run_id)
    found = client.search_runs(
        [experiment_id], "metrics.acc > 0.2 AND params.opt = 'adam'", order_by=["metrics.acc DESC"]
    )
    pages, token = [], None
    while True:
        page = client.search_runs([experiment_id], order_by=["params.i ASC"], max_results=2, page_token=token)
        pages.append([r.info.run_name for r in page])
        token = page.token
        if not token:
            break
    return {
        "filtered": [r.info.run_name for r in found],
        "pages": pages,
        "like": sorted(r.info.run_name for r in client.search_runs([experiment_id], "attributes.run_name LIKE 'r%4'")),
        "bad_filter": error_code(lambda: client.search_runs([experiment_id], "metrics.acc >> 1")),
        "or_filter": error_code(lambda: client.search_runs([experiment_id], "params.a = '1' OR params.b = '2'")),
        "trailing_and": [r.info.run_name for r in client.search_runs([experiment_id], "params.opt = 'sgd' AND")],
    }


@scenario
def history_paging(client: MlflowClient) -> Result:
    experiment_id = client.create_experiment(named("compat-history"))
    run = client.create_run(experiment_id)
    points = 30_000  # more than one page of the client's 25,000
    for start in range(0, points, 1000):
        batch = [Metric("m", s * 0.5, 1000 + s, s) for s in range(start, start + 1000)]
        client.log_batch(run.info.run_id, metrics=batch)
    history = client.get_metric_history(run.info.run_id, "m")
    return {
        "run_id": run.info.run_id,
        "count": len(history),
        "steps_in_order": [m.step for m in history] == list(range(points)),
        "last": [history[-1].step, history[-1].value, history[-1].timestamp],
        "latest": client.get_run(run.info.run_id).data.metrics,
    }


@scenario
def lifecycle(client: MlflowClient) -> Result:
    experiment_id = client.create_experiment(named("compat-lifecycle"))
    run = client.create_run(experiment_id, run_name="to-delete")
    run_id = run.info.run_id
    client.delete_run(run_id)
    deleted = client.get_run(run_id).info.lifecycle_stage
    deleted_only = [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)]
    active_only = [r.info.run_id for r in client.search_runs([experiment_id])]
    log_to_deleted = error_code(lambda: client.log_metric(run_id, "m", 1.0))
    client.restore_run(run_id)
    restored = client.get_run(run_id).info.lifecycle_stage
    client.update_run(run_id, status="KILLED", name="renamed-run")
    updated = client.get_run(run_id)

    client.set_experiment_tag(experiment_id, "owner", "me")
    client.rename_experiment(experiment_id, named("compat-lifecycle-renamed"))
    renamed = client.get_experiment(experiment_id)
    other = named("compat-lifecycle-other")
    client.create_experiment(other)
    rename_taken = error_code(lambda: client.rename_experiment(experiment_id, other))
    restore_active = error_code(lambda: client.restore_experiment(experiment_id))
    client.delete_experiment(experiment_id)
    run_in_deleted = error_code(lambda: client.create_run(experiment_id))  # just after one there
    experiment_deleted = client.get_experiment(experiment_id).lifecycle_stage
    run_with_experiment = client.get_run(run_id).info.lifecycle_stage  # MLflow deletes its runs too
    by_name = client.get_experiment_by_name(named("compat-lifecycle-renamed"))
    delete_deleted = error_code(lambda: client.delete_experiment(experiment_id))
    rename_deleted = error_code(lambda: client.rename_experiment(experiment_id, named("compat-lifecycle-gone")))
    client.restore_experiment(experiment_id)
    searched = client.search_experiments(
        filter_string=f"name LIKE '{named('compat-')}%'", order_by=["name ASC"], view_type=ViewType.ALL
    )
    return {
        "deleted": deleted,
        "deleted_only": deleted_only,
        "active_only": active_only,
        "log_to_deleted": log_to_deleted,
        "restored": restored,
        "updated": [updated.info.status, updated.info.run_name, updated.data.tags.get("mlflow.runName")],
        "renamed": [renamed.name.removeprefix(PREFIX), renamed.tags],
        "experiment_deleted": experiment_deleted,
        "run_with_experiment": [run_with_experiment, client.get_run(run_id).info.lifecycle_stage],
        "by_name_stage": by_name.lifecycle_stage if by_name else None,
        "restored_experiment": client.get_experiment(experiment_id).lifecycle_stage,
        "refused": [rename_taken, restore_active, delete_deleted, rename_deleted, run_in_deleted],
        "searched": [e.name.removeprefix(PREFIX) for e in searched],
        "run_id": run_id,
    }


@scenario
def datasets(client: MlflowClient) -> Result:
    experiment_id = client.create_experiment(named("compat-datasets"))
    run = client.create_run(experiment_id)
    dataset = Dataset(name="iris", digest="abc123", source_type="local", source='{"uri": "/data/iris.csv"}')
    client.log_inputs(run.info.run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
    found = client.search_runs([experiment_id], "datasets.name = 'iris' AND datasets.context = 'training'")
    return {"run": run_json(client.get_run(run.info.run_id)), "searched": [r.info.run_id for r in found]}


@scenario
def errors(client: MlflowClient) -> Result:
    experiment_id = client.create_experiment(named("compat-errors"))
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "p", "1")
    return {
        "same_param_again": error_code(lambda: client.log_param(run_id, "p", "1")),
        "changed_param": error_code(lambda: client.log_param(run_id, "p", "2")),
        "changed_param_in_batch": error_code(lambda: client.log_batch(run_id, params=[Param("p", "3")])),
        "duplicate_experiment": error_code(lambda: client.create_experiment(named("compat-errors"))),
        "missing_run": error_code(lambda: client.get_run("0" * 32)),
        "missing_experiment": error_code(lambda: client.get_experiment("424242")),
        "missing_name": client.get_experiment_by_name("no-such-experiment") is None,
        "bad_metric_name": error_code(lambda: client.log_metric(run_id, "../escape", 1.0)),
        "long_values": error_code(
            lambda: (
                client.log_param(run_id, "long", "x" * 7000),
                client.set_tag(run_id, "long", "y" * 9000),
                client.log_batch(run_id, params=[Param("long2", "z" * 7000)], tags=[RunTag("long2", "w" * 9000)]),
            )
        ),
        "run_in_missing_experiment": error_code(lambda: client.create_run("424242")),
        "nan_metric": error_code(lambda: client.log_metric(run_id, "nan", float("nan"))),
        "nan_read_back": str(client.get_run(run_id).data.metrics.get("nan")),
        "params": client.get_run(run_id).data.params,
        "tags": client.get_run(run_id).data.tags,
    }


def version_json(version: Any) -> Result:
    return {
        "version": version.version,
        "stage": version.current_stage,
        "source": version.source,
        "run_id": version.run_id,
        "description": version.description,
        "tags": version.tags,
        "aliases": sorted(version.aliases),
        "user_id": version.user_id,
    }


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree_digests(root: str) -> dict[str, str]:
    """sha256 of every file under root, by its '/'-separated path below root."""
    return {
        os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"): sha256_of(os.path.join(folder, name))
        for folder, _, names in os.walk(root)
        for name in names
    }


@scenario
def logged_model_metrics(client: MlflowClient) -> Result:
    """MLflow 3: an evaluation run logs metrics for models it did not produce (some on a dataset);
    the models show them, searches filter and order by them, the run lists the models as inputs."""
    if int(mlflow.__version__.split(".")[0]) < 3:
        return {}
    experiment_id = client.create_experiment(named("compat-model-metrics"))
    ids = {n: mlflow.initialize_logged_model(name=n, experiment_id=experiment_id).model_id for n in "abcd"}
    val = Dataset(name="val", digest="d1", source_type="local", source='{"uri": "/data/val.csv"}')
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("acc", 0.5, step=1, model_id=ids["a"])
        mlflow.log_metric("acc", 0.9, step=1, model_id=ids["b"])
        mlflow.log_metric("acc", 0.2, step=2, model_id=ids["a"])  # a's latest
        mlflow.log_metric("acc", 0.7, step=3, model_id=ids["c"], dataset=val)

    def search(**kwargs: Any) -> list[str]:
        found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list", **kwargs)
        return [m.name for m in found]

    by_acc = {"field_name": "metrics.acc"}
    return {
        "metrics_a": sorted(
            (m.key, m.value, m.step, m.run_id == run.info.run_id) for m in mlflow.get_logged_model(ids["a"]).metrics
        ),
        "metric_c": [
            (m.dataset_name, m.dataset_digest, m.model_id == ids["c"])
            for m in mlflow.get_logged_model(ids["c"]).metrics
        ],
        "filtered": sorted(search(filter_string="metrics.acc > 0.6")),
        "on_val": search(filter_string="metrics.acc > 0.6", datasets=[{"dataset_name": "val"}]),
        "any_on_val": search(datasets=[{"dataset_name": "val", "dataset_digest": "d1"}]),
        "descending": search(order_by=[{**by_acc, "ascending": False}]),
        "ascending": search(order_by=[by_acc]),
        "inputs": sorted(i.model_id for i in client.get_run(run.info.run_id).inputs.model_inputs)
        == sorted(ids[n] for n in "abc"),
        "run_metrics": client.get_run(run.info.run_id).data.metrics,
    }


@scenario
def registry(client: MlflowClient) -> Result:
    name = named("reg-model")
    created = client.create_registered_model(name, tags={"team": "ds"}, description="first")
    run_id = client.create_run("0").info.run_id
    v1 = client.create_model_version(name, f"runs:/{run_id}/model", run_id, tags={"k": "v"}, description="v1")
    v2 = client.create_model_version(name, "s3://bucket/model2")
    v3 = client.create_model_version(name, "s3://bucket/model3")
    client.set_registered_model_alias(name, "champion", "1")
    first_champion = client.get_model_version_by_alias(name, "champion").version
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "3")
    with_aliases = client.get_registered_model(name)
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "2", "Production")
    client.transition_model_version_stage(name, "3", "production", archive_existing_versions=True)
    latest = client.get_latest_versions(name, stages=["Production", "Archived"])
    client.update_registered_model(name, "second")
    client.update_model_version(name, "1", "v1 again")
    client.set_registered_model_tag(name, "x", "y")
    client.delete_registered_model_tag(name, "team")
    client.set_model_version_tag(name, "2", "k2", "v2")
    client.delete_model_version_tag(name, "1", "k")
    client.delete_registered_model_alias(name, "challenger")
    model = client.get_registered_model(name)
    searched = client.search_registered_models(f"name LIKE '{named('reg-')}%'")
    by_tag = client.search_registered_models(f"name LIKE '{named('reg-')}%' AND tags.x = 'y'")
    versions = client.search_model_versions(f"name = '{name}'")
    by_run = client.search_model_versions(f"run_id = '{run_id}'")
    download_uri = client.get_model_version_download_uri(name, "1")
    v1_read = client.get_model_version(name, "1")

    renamed = named("reg-renamed")
    client.rename_registered_model(name, renamed)
    after_rename = client.get_model_version(renamed, "3")
    old_name = error_code(lambda: client.get_registered_model(name))
    client.delete_model_version(renamed, "2")  # held "champion": MLflow drops the alias with it
    deleted_version = error_code(lambda: client.get_model_version(renamed, "2"))
    dropped_alias = error_code(lambda: client.get_model_version_by_alias(renamed, "champion"))
    v4 = client.create_model_version(renamed, "s3://bucket/model4")  # numbers are never reused
    left = sorted(v.version for v in client.search_model_versions(f"name = '{renamed}'"))
    client.delete_registered_model(renamed)
    deleted_model = error_code(lambda: client.get_registered_model(renamed))
    client.create_registered_model(renamed)  # a new model under an old name starts at 1 again
    fresh = client.create_model_version(renamed, "s3://bucket/fresh").version
    return {
        "created": [created.name.removeprefix(PREFIX), created.description, created.tags],
        "numbers": [v1.version, v2.version, v3.version, v4.version, fresh],
        "v1": version_json(v1_read),
        "run_id": run_id,
        "first_champion": first_champion,
        "updated_by_versions": with_aliases.last_updated_timestamp
        == v3.creation_timestamp
        > created.creation_timestamp,
        "aliases": with_aliases.aliases,
        "latest": [(v.version, v.current_stage) for v in latest],
        "model": {
            "description": model.description,
            "tags": model.tags,
            "aliases": model.aliases,
            "latest": sorted((v.version, v.current_stage) for v in model.latest_versions),
        },
        "versions": [version_json(v) for v in sorted(versions, key=lambda v: int(v.version))],
        "searched": [m.name.removeprefix(PREFIX) for m in searched],
        "by_tag": [m.name.removeprefix(PREFIX) for m in by_tag],
        "by_run": [v.version for v in by_run],
        "download_uri": download_uri,
        "after_rename": [after_rename.name.removeprefix(PREFIX), after_rename.current_stage],
        "old_name": old_name,
        "deleted_version": deleted_version,
        "dropped_alias": dropped_alias,
        "left": left,
        "deleted_model": deleted_model,
    }


@scenario
def registry_errors(client: MlflowClient) -> Result:
    name = named("reg-errors")
    client.create_registered_model(name)
    client.create_registered_model(named("reg-errors-other"))
    client.create_model_version(name, "s3://bucket/m")
    return {
        "missing_model": error_code(lambda: client.get_registered_model(named("reg-missing"))),
        "duplicate_model": error_code(lambda: client.create_registered_model(name)),
        "missing_version": error_code(lambda: client.get_model_version(name, "7")),
        "version_of_missing_model": error_code(
            lambda: client.create_model_version(named("reg-missing"), "s3://bucket/x")
        ),
        "alias_to_missing_version": error_code(lambda: client.set_registered_model_alias(name, "a", "7")),
        "missing_alias": error_code(lambda: client.get_model_version_by_alias(name, "nope")),
        "reserved_alias": error_code(lambda: client.set_registered_model_alias(name, "latest", "1")),
        "bad_stage": error_code(lambda: client.transition_model_version_stage(name, "1", "Live")),
        "rename_onto_existing": error_code(lambda: client.rename_registered_model(name, named("reg-errors-other"))),
        "bad_search": error_code(lambda: client.search_registered_models("name = 'a' OR name = 'b'")),
    }


@scenario
def promotion_gates(client: MlflowClient) -> Result:
    """runstream's promotion gates, set and met through the client alone: a gate is a model tag, and
    a move the gate refuses is an error naming each failed check."""
    experiment = client.create_experiment(named("compat-gates"))
    name = named("gated")
    client.create_registered_model(name)
    for accuracy, status in ((0.95, "passed"), (0.8, "passed"), (0.97, "pending")):
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, "accuracy", accuracy)
        client.set_tag(run, "validation_status", status)
        client.create_model_version(name, f"s3://bucket/{run}", run_id=run)
    condition = "metrics.accuracy >= 0.9 and tags.validation_status = 'passed'"
    client.set_registered_model_tag(name, "runstream.gate.prod", condition)
    client.set_registered_model_tag(name, "runstream.gate.Production", "metrics.accuracy >= current.metrics.accuracy")
    return {
        "bad_gate": error_code(lambda: client.set_registered_model_tag(name, "runstream.gate.x", "metrics.a >")),
        "low": failure(lambda: client.set_registered_model_alias(name, "prod", "2")),
        "unvalidated": failure(lambda: client.set_registered_model_alias(name, "prod", "3")),
        "met": failure(lambda: client.set_registered_model_alias(name, "prod", "1")),
        "prod": client.get_model_version_by_alias(name, "prod").version,
        "to_production": failure(lambda: client.transition_model_version_stage(name, "1", "Production")),
        "down_from_production": failure(lambda: client.transition_model_version_stage(name, "2", "Production")),
        "stages": [client.get_model_version(name, v).current_stage for v in ("1", "2")],
    }


@scenario
def artifacts(client: MlflowClient) -> Result:
    mlflow.set_experiment(named("compat-artifacts"))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "plots", "deep"))
        # The client streams an empty file without a Content-Length (chunked): it must arrive too.
        files = {
            "notes.txt": b"hello",
            "empty.txt": b"",
            "plots/a.bin": os.urandom(300_000),
            "plots/deep/b.json": b"{}",
        }
        for rel, data in files.items():
            with open(os.path.join(src, *rel.split("/")), "wb") as f:
                f.write(data)
        single = os.path.join(tmp, "weights.bin")
        with open(single, "wb") as f:
            f.write(os.urandom(2_000_000))
        large = os.path.join(tmp, "large.bin")  # in two parts of MLflow's 10 MB chunks
        with open(large, "wb") as f:
            f.write(os.urandom(12_000_000))
        with mlflow.start_run() as run:
            mlflow.log_artifact(single)
            mlflow.log_artifact(single, artifact_path="copies")
            mlflow.log_artifacts(src, artifact_path="tree")
            # Proxied multipart (S3 behind the server; a server without it answers NOT_IMPLEMENTED,
            # and the client sends one PUT)
            os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "true"
            os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"] = "1000000"
            try:
                mlflow.log_artifact(large, artifact_path="parts")
            finally:
                del (
                    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"],
                    os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"],
                )
        run_id = run.info.run_id
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        whole = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=out)
        os.makedirs(os.path.join(tmp, "one"))  # 2.x wants the destination to exist
        one = client.download_artifacts(run_id, "copies/weights.bin", os.path.join(tmp, "one"))
        got: Result = {
            "run_id": run_id,
            "artifact_uri": run.info.artifact_uri,
            "root": sorted((f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)),
            "tree": sorted((f.path, f.is_dir) for f in client.list_artifacts(run_id, "tree/plots")),
            "of_a_file": [f.path for f in client.list_artifacts(run_id, "weights.bin")],  # MLflow: a file lists empty
            "sent": {
                **{f"tree/{k}": hashlib.sha256(v).hexdigest() for k, v in files.items()},
                "weights.bin": sha256_of(single),
                "copies/weights.bin": sha256_of(single),
                "parts/large.bin": sha256_of(large),
            },
            "downloaded": tree_digests(whole),
            "one": sha256_of(one),
            "missing": failure(lambda: client.download_artifacts(run_id, "nope.txt", tmp)),
        }
        # The client's artifact repository of the run deletes through DELETE mlflow-artifacts/artifacts/...
        repo = get_artifact_repository(run.info.artifact_uri)
        repo.delete_artifacts("tree/plots")  # a folder: every file under it
        repo.delete_artifacts("copies/weights.bin")  # a file
        repo.delete_artifacts("never-logged")  # nothing there: no error, as MLflow's server
        return got | {
            "deleted": ["tree/plots/a.bin", "tree/plots/deep/b.json", "copies/weights.bin"],
            "tree_after_delete": sorted(f.path for f in client.list_artifacts(run_id, "tree")),
            "copies_after_delete": [f.path for f in client.list_artifacts(run_id, "copies")],
            "deleted_download": failure(lambda: client.download_artifacts(run_id, "copies/weights.bin", tmp)),
            "kept_after_delete": sha256_of(client.download_artifacts(run_id, "weights.bin", out)),
        }


# Given, so MLflow skips inferring them (a subprocess that loads the model, ~5 s a call): the same
# files reach the server either way.
REQUIREMENTS = ["scikit-learn"]


@scenario
def sklearn_model(client: MlflowClient) -> Result:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    major = int(mlflow.__version__.split(".")[0])
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    mlflow.set_experiment(named("compat-models"))
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("acc", float(model.score(x, y)))
        naming = {"name": "model"} if major >= 3 else {"artifact_path": "model"}
        info = mlflow.sklearn.log_model(model, pip_requirements=REQUIREMENTS, **naming)
    expected = model.predict_proba(x)[:, 1].tolist()
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    got: Result = {
        "expected": model.predict(x).tolist(),
        "from_run": loaded.predict(x).tolist(),
        "proba_equal": mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model").predict_proba(x)[:, 1].tolist()
        == expected,
    }
    if major >= 3:
        logged = client.get_logged_model(info.model_id)
        found = client.search_logged_models([run.info.experiment_id], filter_string="name = 'model'")
        got |= {
            "from_model_id": mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict(x).tolist(),
            "logged": {
                "status": str(logged.status),
                "name": logged.name,
                "source_run_id": logged.source_run_id == run.info.run_id,
                "params": logged.params,
                "artifact_location": logged.artifact_location,
            },
            "searched": [m.model_id for m in found] == [info.model_id],
            "run_outputs": [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs],
            "model_id": info.model_id,
        }
    else:
        history = json.loads(client.get_run(run.info.run_id).data.tags["mlflow.log-model.history"])
        got["history"] = [(m["artifact_path"], sorted(m["flavors"])) for m in history]
    return got


@scenario
def registered_sklearn(client: MlflowClient) -> Result:
    """autolog for scikit-learn, log_model with registered_model_name, an alias, load by alias."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    major = int(mlflow.__version__.split(".")[0])
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(int)
    name = named("sk-registered")
    mlflow.set_experiment(named("compat-registered"))
    mlflow.sklearn.autolog(log_models=False)
    try:
        with mlflow.start_run() as run:
            model = LogisticRegression(C=0.5).fit(x, y)
            naming = {"name": "model"} if major >= 3 else {"artifact_path": "model"}
            info = mlflow.sklearn.log_model(model, registered_model_name=name, pip_requirements=REQUIREMENTS, **naming)
    finally:
        mlflow.sklearn.autolog(disable=True)
    client.set_registered_model_alias(name, "champion", "1")
    data = client.get_run(run.info.run_id).data
    version = client.get_model_version(name, "1")
    # 3.x registers models:/<model id>, whose files MLflow's server locates at the logged model's
    # artifact location; 2.x registers the files' location itself.
    files = client.get_logged_model(info.model_id).artifact_location if major >= 3 else version.source
    return {
        "expected": model.predict(x).tolist(),
        "by_alias": mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(x).tolist(),
        "autolog_C": data.params.get("C"),
        "autolog_metrics": sorted(k for k in data.metrics if k.startswith("training_")),
        "version_run": [version.run_id, run.info.run_id],
        "download_uri": [client.get_model_version_download_uri(name, "1"), files],
    }


@scenario
def system_metrics(client: MlflowClient) -> Result:
    """mlflow.enable_system_metrics_logging(): CPU, memory, disk and network sampled while a run runs."""
    mlflow.set_experiment(named("compat-system"))
    mlflow.set_system_metrics_sampling_interval(0.5)
    mlflow.set_system_metrics_samples_before_logging(1)
    mlflow.enable_system_metrics_logging()
    try:
        with mlflow.start_run() as run:
            time.sleep(2.0)
    finally:
        mlflow.disable_system_metrics_logging()
        mlflow.set_system_metrics_sampling_interval(None)
        mlflow.set_system_metrics_samples_before_logging(None)
    run_id = run.info.run_id
    cpu = client.get_metric_history(run_id, "system/cpu_utilization_percentage")
    return {
        "keys": sorted(k for k in client.get_run(run_id).data.metrics if k.startswith("system/")),
        "cpu": [[m.step, 0 <= m.value <= 100] for m in sorted(cpu, key=lambda m: m.step)],
    }


def _receiver() -> tuple[ThreadingHTTPServer, list[tuple[dict[str, str], str]]]:
    """A local webhook receiver: every POST's headers and body."""
    got: list[tuple[dict[str, str], str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(
                (
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(int(self.headers["Content-Length"])).decode(),
                )
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def mine(deliveries: list[tuple[dict[str, str], str]], name: str) -> list[tuple[dict[str, str], str]]:
    """The deliveries about this model, and the test send's: other clients' changes reach a hook too."""
    return [(h, b) for h, b in deliveries if json.loads(b)["data"].get("name") in (name, "example_model")]


@scenario
def webhooks(client: MlflowClient) -> Result:
    """MLflow 3.3+'s webhooks: created, tested, sent registry changes (HMAC-signed), updated, listed, deleted."""
    if not hasattr(client, "create_webhook"):
        return {"skipped": f"mlflow {mlflow.__version__} has no webhooks API"}
    server, got = _receiver()
    secret = "s3cret"
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        hook = client.create_webhook(
            name="compat-hook",
            url=url,
            events=["registered_model.created", "model_version_alias.created"],
            description="d",
            secret=secret,
        )
        tested = client.test_webhook(hook.webhook_id)
        name = named("hooked")
        client.create_registered_model(name, tags={"team": "ml"})
        client.create_model_version(name, "s3://bucket/model")
        client.set_registered_model_alias(name, "prod", "1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(mine(got, name)) < 3:
            time.sleep(0.1)
        updated = client.update_webhook(hook.webhook_id, status="DISABLED", description="e")
        listed = [w.webhook_id for w in client.list_webhooks()]
        client.delete_webhook(hook.webhook_id)
    finally:
        server.shutdown()

    def verified(headers: dict[str, str], body: str) -> bool:
        signed = f"{headers['x-mlflow-delivery-id']}.{headers['x-mlflow-timestamp']}.{body}".encode()
        digest = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
        return headers["x-mlflow-signature"] == f"v1,{digest}"

    return {
        "created": {"name": hook.name, "url": hook.url == url, "events": sorted(str(e) for e in hook.events)},
        "status": str(hook.status),
        "tested": [tested.success, tested.response_status],
        "deliveries": [
            [json.loads(body)["entity"], json.loads(body)["action"], json.loads(body)["data"]]
            for _, body in mine(got, name)
        ],
        "signed": [verified(headers, body) for headers, body in mine(got, name)],
        "updated": [str(updated.status), updated.description, updated.name],
        "listed": hook.webhook_id in listed,
        "deleted": error_code(lambda: client.get_webhook(hook.webhook_id)),
    }


def main() -> None:
    global PREFIX
    mlflow.set_tracking_uri(sys.argv[1])
    PREFIX = sys.argv[3]
    client = MlflowClient()
    results: dict[str, Result] = {}
    for name, fn in SCENARIOS.items():
        started = time.monotonic()
        try:
            results[name] = fn(client)
        except Exception:  # recorded, so the other scenarios still run and the test shows why
            results[name] = {"crashed": traceback.format_exc()}
        print(f"scenario {name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    with open(sys.argv[2], "w") as out:
        json.dump({"mlflow_version": mlflow.__version__, "results": results}, out)


if __name__ == "__main__":
    main()
