"""The projector and the read queries, on both ClickHouse backends (embedded engine and server)."""

import shutil
import threading
import time

import numpy as np
import pytest
from prometheus_client import REGISTRY

import runstream.projector.migrate as migrate_module
import runstream.projector.writer as writer_module
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.local import LocalLog
from runstream.projector.projector import Projector
from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, event, metric_batch_fields, partition_key
from runstream.store import artifacts as artifact_queries
from runstream.store import logged_models, queries, run_inputs
from runstream.store import registry as rq
from runstream.store.applied import applied_positions
from runstream.store.search.runs import search_runs
from tests.conftest import BACKENDS, CLUSTER_BACKENDS, new_store

RUN = "0123456789abcdef0123456789abcdef"
GROUP = "test"


def message(name, /, **fields):
    e = event(name, **fields)
    return partition_key(*e), encode(*e)


def metrics(run_id, rank, keys, key_index, values, steps, timestamps):
    cols = MetricColumns(
        run_id,
        rank,
        f"node{rank}",
        keys,
        np.array(key_index, np.uint16),
        np.array(values, np.float64),
        np.array(steps, np.int64),
        np.array(timestamps, np.int64),
    )
    return message("MetricBatch", **metric_batch_fields(cols))


def project(log: LocalLog, store: ClickHouse, group: str = GROUP) -> Projector:
    """Runs a projector until everything in the log is applied."""
    projector = Projector(lambda _handlers: log.consumer(group), store, group, max_wait_s=0.05)
    worker = threading.Thread(target=projector.run)
    worker.start()
    end = log.end_offset()
    deadline = time.monotonic() + 30
    while applied_positions(store.client, group).get(0, 0) < end:
        assert time.monotonic() < deadline, "projector did not catch up"
        time.sleep(0.02)
    projector.stop()
    worker.join()
    return projector


@pytest.fixture
def log(tmp_path):
    log = LocalLog(tmp_path / "events.sqlite3")
    yield log
    log.close()


def run_events_from_many_ranks():
    """One run created by two ranks, params logged twice, a tag deleted, points from both ranks."""
    return [
        message("ExperimentCreated", experiment_id="7", name="exp", artifact_location=None, tags={"a": "1"}),
        message("ExperimentCreated", experiment_id="7", name="exp", artifact_location=None, tags={}),
        message(
            "RunCreated",
            run_id=RUN,
            experiment_id="7",
            run_name="r",
            user_id="u",
            start_time=200,
            tags={"team": "ds"},
            parent_run_id=None,
            artifact_uri=None,
        ),
        message(
            "RunCreated",
            run_id=RUN,
            experiment_id="7",
            run_name="r",
            user_id="u",
            start_time=100,
            tags={"team": "ds"},
            parent_run_id=None,
            artifact_uri=None,
        ),
        message("ParamsLogged", run_id=RUN, params={"lr": "0.1", "depth": "3"}),
        message("ParamsLogged", run_id=RUN, params={"lr": "0.2"}),  # params are write-once
        message("TagsSet", run_id=RUN, tags={"stage": "dev", "gone": "x"}),
        message("TagDeleted", run_id=RUN, key="gone"),
        metrics(RUN, 0, ["loss"], [0, 0], [1.0, 0.5], [0, 1], [10, 11]),
        metrics(RUN, 1, ["loss", "acc"], [0, 1], [0.7, 0.9], [1, 1], [12, 12]),
        message("RunUpdated", run_id=RUN, status="FINISHED", end_time=300, run_name=None),
    ]


def assert_run_folded(store):
    run = queries.run(store.client, RUN)
    assert run is not None
    assert (run["experiment_id"], run["run_name"], run["status"]) == ("7", "r", "FINISHED")
    assert (run["start_time"], run["end_time"], run["lifecycle_stage"]) == (100, 300, "active")
    assert run["params"] == {"lr": "0.1", "depth": "3"}
    assert run["tags"] == {"team": "ds", "stage": "dev"}
    # latest = greatest (step, timestamp, value): step 1 at t=12 from rank 1
    assert run["metrics"]["loss"] == {"value": 0.7, "timestamp": 12, "step": 1}
    # The search table (migrations/014) holds the same state.
    found = (
        "params.lr = '0.1' AND tags.stage = 'dev' AND metrics.loss = 0.7 AND tags.gone IS NULL AND status = 'FINISHED'"
    )
    assert search_runs(store.client, ["7"], found)[0] == [run]
    assert run["metrics"]["acc"]["value"] == 0.9
    [experiment] = queries.experiments(store.client, name="exp")
    assert experiment["tags"] == {"a": "1"} and experiment["experiment_id"] == "7"
    page = queries.metric_history(store.client, RUN, "loss", 100, None)
    assert page.values.tolist() == [1.0, 0.5, 0.7]
    assert page.ranks.tolist() == [0, 0, 1]


def test_run_state_folds_events_from_many_ranks(log, store):
    log.append(run_events_from_many_ranks())
    project(log, store)
    assert_run_folded(store)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_folds_the_state_of_runs_projected_before_it(log, request, backend, tmp_path, monkeypatch):
    before = tmp_path / "migrations"
    before.mkdir()
    shutil.copy(migrate_module.MIGRATIONS_DIR / "001_initial.sql", before)
    monkeypatch.setattr(migrate_module, "MIGRATIONS_DIR", before)
    monkeypatch.setattr(writer_module, "state_rows", lambda rows: {})  # the projector of 001
    monkeypatch.setattr(writer_module, "write_search_rows", lambda *args: None)
    store = new_store(request, backend)
    log.append(run_events_from_many_ranks())
    project(log, store)
    assert store.client.query("EXISTS TABLE run_state").result_rows == [(0,)]
    monkeypatch.undo()
    assert migrate_module.migrate(store)[0] == 2  # then those after it
    assert_run_folded(store)


@pytest.mark.parametrize("backend", CLUSTER_BACKENDS)
def test_migration_fills_run_details_of_runs_projected_before_it(log, request, backend, tmp_path, monkeypatch):
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(migrate_module.MIGRATIONS_DIR.glob("00[1-4]_*.sql")):
        shutil.copy(path, before)
    monkeypatch.setattr(migrate_module, "MIGRATIONS_DIR", before)
    monkeypatch.setattr(writer_module, "write_search_rows", lambda *args: None)  # the projector before 014
    store = new_store(request, backend)
    log.append(run_events_from_many_ranks())
    project(log, store)
    assert store.client.query("EXISTS TABLE run_details").result_rows == [(0,)]
    monkeypatch.undo()
    assert migrate_module.migrate(store)[0] == 5  # then the later ones
    assert_run_folded(store)


def test_events_of_one_millisecond_apply_in_log_order(log, store):
    created = event(
        "RunCreated",
        run_id=RUN,
        experiment_id="7",
        run_name="r",
        user_id="u",
        start_time=1,
        tags={},
        parent_run_id=None,
        artifact_uri=None,
    )
    same_ms = [event("RunDeleted", run_id=RUN), event("RunRestored", run_id=RUN), event("RunDeleted", run_id=RUN)]
    for e in [created, *same_ms]:
        e[1]["header"]["event_time"] = 1000
    inputs = event(
        "InputsLogged", run_id=RUN,
        datasets=[{"name": "d", "digest": "x1", "source_type": "local", "source": "/d", "schema": None,
                   "profile": None, "tags": {"mlflow.data.context": "train"}}],
    )  # fmt: skip
    log.append([(RUN, encode(*e)) for e in [created, *same_ms, inputs]])
    project(log, store)
    run = queries.run(store.client, RUN)
    assert run is not None and run["lifecycle_stage"] == "deleted"
    rows = store.client.query("SELECT name, digest, tags FROM run_inputs").result_rows
    assert rows == [("d", "x1", {"mlflow.data.context": "train"})]


def test_replaying_the_log_changes_no_answer(log, store):
    log.append([metrics(RUN, 0, ["m"], [0] * 5, [1, 2, 3, 4, 5], [0, 1, 2, 3, 4], [1, 1, 1, 1, 1])])
    log.append([metrics(RUN, 0, ["m"], [0, 0], [2, 2], [1, 1], [1, 1])])  # exact re-send of a point
    log.append([message("RunDeleted", run_id=RUN)])
    project(log, store)
    first = queries.metric_history(store.client, RUN, "m", 100, None)
    assert first.values.tolist() == [1, 2, 3, 4, 5]

    consumer = log.consumer(GROUP)
    consumer.commit({0: 1})  # rewind: the whole log is applied a second time
    consumer.close()
    replay = project(log, store)
    assert replay.points_written == 0  # every metric message was known to be stored already
    again = queries.metric_history(store.client, RUN, "m", 100, None)
    assert again.values.tolist() == [1, 2, 3, 4, 5]


def test_a_crash_between_the_metric_inserts_is_repaired_exactly(log, store):
    log.append([metrics(RUN, 0, ["m"], [0] * 200, np.arange(200.0), np.arange(200), np.ones(200))])
    project(log, store)
    client = store.client
    # As if the projector died after inserting the points but before the rollup and the summary:
    client.command("TRUNCATE TABLE metric_rollup")
    client.command("TRUNCATE TABLE metric_summary")
    consumer = log.consumer(GROUP)
    consumer.commit({0: 1})
    consumer.close()
    project(log, store)
    assert client.query("SELECT count() FROM metrics").result_rows[0][0] == 200  # not inserted again
    assert client.query("SELECT sum(points) FROM metric_rollup").result_rows[0][0] == 200
    assert client.query("SELECT sum(points), max(latest) FROM metric_summary").result_rows[0] == (200, (199, 1, 199.0))
    project_again = log.consumer(GROUP)
    project_again.commit({0: 1})
    project_again.close()
    project(log, store)  # a plain replay adds nothing anywhere
    assert client.query("SELECT sum(points) FROM metric_rollup").result_rows[0][0] == 200


def test_a_batch_streamed_in_slices_lands_in_one_part(log, store):
    """Readers see a batch's points all at once: its insert, sent in slices, is one part."""
    points = writer_module.STREAM_SLICE_ROWS * 2 + 10
    steps = np.arange(points)
    store.client.command("SYSTEM STOP MERGES metrics")  # parts as inserted
    log.append([metrics(RUN, 0, ["m"], [0] * points, steps * 0.5, steps, np.ones(points))])
    project(log, store)
    parts = store.client.query(
        "SELECT count(), sum(rows) FROM system.parts "
        "WHERE database = currentDatabase() AND table = 'metrics' AND active"
    ).result_rows[0]
    assert parts == (1, points)


def test_a_resent_event_is_stored_once(log, store):
    batch = metrics(RUN, 0, ["m"], [0, 0, 0], [1, 2, 3], [0, 1, 2], [5, 5, 5])
    log.append([batch])
    log.append([batch])  # a client retry after a lost acknowledgement: same event, new offset
    assert project(log, store).points_written == 3
    assert store.client.query("SELECT count() FROM metrics").result_rows[0][0] == 3


def test_history_pages_through_ties_exactly(store, log):
    rng = np.random.default_rng(7)
    n = 500
    steps = rng.integers(0, 20, n)  # many points share a step, a timestamp and a rank
    stamps = rng.integers(0, 3, n)
    ranks = rng.integers(0, 2, n)
    values = rng.permutation(n).astype(np.float64)
    for rank in (0, 1):
        sel = ranks == rank
        log.append([metrics(RUN, rank, ["k"], [0] * sel.sum(), values[sel], steps[sel], stamps[sel])])
    project(log, store)
    for page_size in (1, 7, 64, 499, 500, 1000):
        got, token = [], None
        while True:
            page = queries.metric_history(store.client, RUN, "k", page_size, token)
            got += list(
                zip(
                    page.steps.tolist(),
                    page.timestamps.tolist(),
                    page.ranks.tolist(),
                    page.values.tolist(),
                    strict=True,
                )
            )
            token = page.next_page_token
            if token is None:
                break
        expected = sorted(zip(steps.tolist(), stamps.tolist(), ranks.tolist(), values.tolist(), strict=True))
        assert got == expected, page_size


def test_bad_messages_are_dead_lettered_and_the_stream_goes_on(log, store):
    counted = REGISTRY.get_sample_value("runstream_projector_dead_letters_total") or 0.0
    good = message("ParamsLogged", run_id=RUN, params={"p": "1"})
    unknown_schema = good[1][:2] + b"\xff" * 8 + good[1][10:]
    invalid = message("ParamsLogged", run_id=RUN, params={"": "empty key"})
    before_1970 = metrics(RUN, 0, ["loss"], [0], [1.0], [0], [-5])
    oversized_key = message("TagsSet", run_id=RUN, tags={"k" * 251: "v"})
    log.append([("x", b"\x00garbage"), ("x", unknown_schema), invalid, before_1970, oversized_key, good])
    projector = project(log, store)
    assert projector.dead_letters == 5
    assert REGISTRY.get_sample_value("runstream_projector_dead_letters_total") == counted + 5
    reasons = [r[0] for r in store.client.query("SELECT reason FROM dead_letters ORDER BY offset").result_rows]
    assert "marker" in reasons[0] and "unknown schema" in reasons[1] and "empty" in reasons[2]
    assert "negative metric timestamp" in reasons[3] and "longer than 250" in reasons[4]
    params = store.client.query("SELECT key, value FROM run_params_view").result_rows
    assert params == [("p", "1")]


def test_registry_events_fold_in_log_order_and_a_replay_changes_nothing(log, store):
    model = "f" * 32
    who = {"registered_model_id": model, "user": "ann"}
    events = [
        event("RegisteredModelCreated", **who, name="m", description="", tags={"t": "1"}),
        *(
            event(
                "ModelVersionCreated", **who, version=v, source=f"s3://b/{v}", run_id=None, run_link=None,
                logged_model_id=None, description="", tags={},
            )
            for v in (1, 2)
        ),
        event("RegisteredModelAliasSet", **who, alias="prod", version=1),
        event("RegisteredModelAliasSet", **who, alias="prod", version=2),  # same millisecond: log order wins
        event("ModelVersionStageTransitioned", **who, version=2, stage="Production"),
        event("RegisteredModelRenamed", **who, name="n"),
    ]  # fmt: skip
    for i, (_, record) in enumerate(events):
        record["header"]["event_time"] = 1000 if i >= 3 else 900 + i
    log.append([(partition_key(*e), encode(*e)) for e in events])
    project(log, store)

    def answers():
        client = store.client
        row = rq.model_row(client, "n")
        assert row is not None
        return (
            rq.model_shape(client, row),
            rq.history(client, model),
            rq.alias_at(client, model, "prod", 1000),
            rq.model_row(client, "m"),
        )

    first = answers()
    shape, history, at, old_name = first
    assert shape["aliases"] == [{"alias": "prod", "version": "2"}] and shape["tags"] == [{"key": "t", "value": "1"}]
    assert [(v["version"], v["current_stage"]) for v in shape["latest_versions"]] == [
        ("1", "None"),  # stage by stage, as MLflow lists them
        ("2", "Production"),
    ]
    assert [e["event"] for e in history] == [
        "model_created", "version_created", "version_created", "alias_set", "alias_set", "stage_transitioned",
        "model_renamed",
    ]  # fmt: skip
    assert at == {"version": "2", "changed_at": 1000, "changed_by": "ann"} and old_name is None
    consumer = log.consumer(GROUP)
    consumer.commit({0: 1})  # rewind: every event applied a second time
    consumer.close()
    project(log, store)
    assert answers() == first


def test_logged_models_fold_and_replay_changes_no_answer(log, store):
    model = "m-" + "ab" * 16
    created = message(
        "LoggedModelCreated",
        model_id=model,
        experiment_id="7",
        name="model",
        model_type=None,
        source_run_id=RUN,
        artifact_uri=f"mlflow-artifacts:/7/models/{model}/artifacts",
        tags={"t": "1", "gone": "x"},
        params={"lr": "0.1"},
    )
    log.append([created])
    log.append([message("LoggedModelParamsLogged", model_id=model, params={"lr": "0.5", "k": "v"})])
    log.append([message("LoggedModelTagDeleted", model_id=model, key="gone")])
    log.append([message("LoggedModelFinalized", model_id=model, status="READY", status_message=None)])
    artifact = {"path": "MLmodel", "size": 3, "sha256": "0" * 64, "uri": "file:///x"}
    log.append([message("ModelArtifactLogged", model_id=model, **artifact)])
    log.append([message("RunOutputsLogged", run_id=RUN, models=[{"model_id": model, "step": 2}])])
    log.append([message("ModelInputsLogged", run_id=RUN, model_ids=[model])])
    evaluation = {"key": "acc", "value": 0.9, "timestamp": 5, "step": 1, "dataset_name": "val", "dataset_digest": "d"}
    log.append([message("LoggedModelMetricsLogged", run_id=RUN, model_id=model, metrics=[evaluation])])
    log.append([message("LoggedModelFinalized", model_id="m-bad", status="READY", status_message=None)])

    def answers():
        found = logged_models.logged_model(store.client, model)
        assert found is not None
        listed = artifact_queries.artifacts(store.client, model, "", False, "model")
        return (
            {k: found[k] for k in ("status", "name", "source_run_id", "deleted", "tags", "params", "metrics")},
            [f["path"] for f in listed],
            run_inputs.model_outputs(store.client, [RUN]),
            run_inputs.model_inputs(store.client, [RUN]),
        )

    project(log, store)
    expected = (
        {"status": "READY", "name": "model", "source_run_id": RUN, "deleted": 0, "tags": {"t": "1"},
         "params": {"lr": "0.1", "k": "v"},  # the first value of a param wins
         "metrics": [{**evaluation, "run_id": RUN, "model_id": model}]},
        ["MLmodel"],
        {RUN: [{"model_id": model, "step": 2}]},
        {RUN: [{"model_id": model}]},
    )  # fmt: skip
    assert answers() == expected
    assert store.client.query("SELECT count() FROM dead_letters").result_rows[0][0] == 1  # the bad model id
    consumer = log.consumer(GROUP)
    consumer.commit({0: 1})  # the whole log again
    consumer.close()
    project(log, store)
    assert answers() == expected


def test_a_steady_trickle_shares_flushes_and_an_idle_event_is_applied_at_once(log, store):
    """Caught up, the projector flushes at once unless it flushed only just now: one event after a
    pause is applied long before max_wait_s, while 40 events a few ms apart share flushes, so that
    writing takes at most about half the time (the next write waits as long as the last one took)."""
    flushes, written = "runstream_projector_batch_messages_count", "runstream_projector_write_seconds_sum"
    projector = Projector(lambda _handlers: log.consumer(GROUP), store, GROUP, max_wait_s=30, min_flush_interval_s=0.2)
    worker = threading.Thread(target=projector.run)
    worker.start()
    try:

        def applied_within(seconds: float) -> bool:
            end, deadline = log.end_offset(), time.monotonic() + seconds
            while applied_positions(store.client, GROUP).get(0, 0) < end:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
            return True

        log.append([message("TagsSet", run_id=RUN, tags={"first": "1"})])
        assert applied_within(10)  # not held for max_wait_s (30 s)
        before = {name: REGISTRY.get_sample_value(name) or 0.0 for name in (flushes, written)}
        started = time.monotonic()
        for i in range(40):
            log.append([message("TagsSet", run_id=RUN, tags={f"t{i}": "1"})])
            time.sleep(0.005)
        assert applied_within(10)
        elapsed = time.monotonic() - started
        count, busy = ((REGISTRY.get_sample_value(name) or 0.0) - before[name] for name in (flushes, written))
        # One flush per event, one after another, would keep the projector writing all the time.
        assert busy <= elapsed / 2 + busy / count  # half of it, give or take the last write
    finally:
        projector.stop()
        worker.join()
