"""Test data for the dashboard, written through the real pipeline: framed events to the native batch
endpoint of `runstream serve` (/api/v1/events), read back once the projector applied them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

import runstream
from runstream.schemas.codec import encode
from runstream.schemas.events import MetricColumns, event, experiment_id_for_name, metric_batch_fields
from runstream.schemas.framing import CONTENT_TYPE, frame

BATCH = 10_000  # events per request: the endpoint's limit
MAX_BYTES = 32 << 20  # bytes per request, half the endpoint's limit
T0 = 1_700_000_000_000


def run_id(name: str) -> str:
    return hashlib.blake2b(name.encode(), digest_size=16).hexdigest()


@dataclass
class Run:
    name: str
    experiment: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start: int = T0
    end: int | None = None  # None: still running
    parent: str | None = None

    @property
    def run_id(self) -> str:
        return run_id(f"{self.experiment}/{self.name}")


def points(run: Run, key: str, steps: np.ndarray, values: np.ndarray, rank: int = 0) -> tuple[str, dict[str, object]]:
    columns = MetricColumns(
        run.run_id, rank, f"node{rank}", [key], np.zeros(len(steps), np.uint16), values, steps, run.start + steps * 10
    )
    return event("MetricBatch", **metric_batch_fields(columns))


def experiment_event(name: str) -> tuple[str, dict[str, object]]:
    return event(
        "ExperimentCreated", experiment_id=experiment_id_for_name(name), name=name, artifact_location=None, tags={}
    )


def run_events(run: Run) -> Iterator[tuple[str, dict[str, object]]]:
    experiment_id = experiment_id_for_name(run.experiment)
    yield event(
        "RunCreated",
        run_id=run.run_id,
        experiment_id=experiment_id,
        run_name=run.name,
        user_id="tester",
        start_time=run.start,
        tags=run.tags,
        parent_run_id=run.parent,
        artifact_uri=None,
    )
    if run.params:
        yield event("ParamsLogged", run_id=run.run_id, params=run.params)
    if run.end is not None:
        yield event("RunUpdated", run_id=run.run_id, status="FINISHED", end_time=run.end, run_name=None)


def post(base: str, events: Iterable[tuple[str, dict[str, object]]]) -> str:
    """Appends the events in requests of at most BATCH events and MAX_BYTES; the last write's
    consistency token."""
    token = ""
    with httpx.Client(base_url=base, timeout=120) as http:
        chunk: list[bytes] = []

        def send() -> str:
            response = http.post("/api/v1/events", content=frame(chunk), headers={"content-type": CONTENT_TYPE})
            response.raise_for_status()
            chunk.clear()
            return str(response.json()["token"])

        size = 0
        for name, record in events:
            message = encode(name, record)
            if chunk and (len(chunk) == BATCH or size + len(message) > MAX_BYTES):
                token = send()
                size = 0
            chunk.append(message)
            size += len(message)
        if chunk:
            token = send()
    return token


def wait_applied(base: str, token: str, timeout: float = 1800) -> None:
    """Returns once the projector applied the write `token` stands for (a read waits for it 10 s at a
    time, then answers a retriable 503)."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{base}/api/v1/experiments", params={"after": token}, timeout=60)
        if response.status_code != 503 or time.monotonic() > deadline:
            response.raise_for_status()
            return


TABLE_EXPERIMENT = "table"
TABLE_RUNS = 2000
LRS = ["0.1", "0.01", "0.001", "0.0001"]
XSS = "<img src=x onerror=alert(1)>"
LOSS_STEPS = 100


def table_run(i: int) -> Run:
    start = T0 + i * 1000
    return Run(
        f"run-{i:04d}",
        TABLE_EXPERIMENT,
        params={"lr": LRS[i % 4], "depth": str(2 + i % 10), "seed": str(i)},
        tags={"team": f"team-{i % 5}"},
        start=start,
        end=start + 60_000 + i,
    )


def final_acc(i: int) -> float:
    return (i * 0.6180339887498949) % 1.0  # distinct values: sorting has no ties


def loss_curve(i: int) -> np.ndarray:
    """Falls with the step, faster for larger lr; runs of one lr differ by up to 30% (by index)."""
    steps = np.arange(LOSS_STEPS)
    return 2.0 / (1 + steps * float(LRS[i % 4]) * 10) * (0.85 + 0.3 * ((i * 7919) % 101) / 100)


def table_events() -> Iterator[tuple[str, dict[str, object]]]:
    yield experiment_event(TABLE_EXPERIMENT)
    for i in range(TABLE_RUNS):
        run = table_run(i)
        yield from run_events(run)
        yield points(run, "loss", np.arange(LOSS_STEPS), loss_curve(i))
        yield points(run, "acc", np.array([LOSS_STEPS - 1]), np.array([final_acc(i)]))
    xss = Run(XSS, TABLE_EXPERIMENT, params={"lr": "0.1", "note": "<script>window.__xss = 1</script>"}, tags={XSS: XSS})
    xss.start, xss.end = T0 - 1000, T0
    yield from run_events(xss)
    yield points(xss, "loss", np.arange(3), np.array([1.0, 0.5, 0.25]))


RANKS_EXPERIMENT = "distributed"
RANKED_STEPS = 1000


def ranked_run(base: str, workdir: Path) -> tuple[str, str]:
    """A run written by two ranks through the SDK, with params, an artifact and a child run; the ids
    of the run and of its child."""
    ranked = run_id("distributed/ddp-train")
    weights = workdir / "weights.bin"
    weights.write_bytes(bytes(range(256)) * 12)  # 3 KiB
    (workdir / "notes.txt").write_text("trained on 2 ranks\n")
    steps = np.arange(RANKED_STEPS)
    tokens = []
    for rank in (1, 0):  # rank 0 last: its leaving ends the run
        run = runstream.start_run(
            RANKS_EXPERIMENT, "ddp-train", {"launcher": "torchrun"}, run_id=ranked, rank=rank, tracking_uri=base
        )
        wobble = 0.05 * np.sin(steps / 7 + rank)
        run.log_metric_arrays("loss", 1 / (1 + steps * 0.01) + rank * 0.1 + wobble, steps)
        if rank == 0:
            run.log_params({"lr": "0.003", "batch_size": "256", "world_size": "2"})
            run.log_metric_arrays("lr", 0.003 * np.cos(steps / RANKED_STEPS * np.pi / 2), steps)
            run.log_artifact(weights, "model")
            run.log_artifact(workdir / "notes.txt")
        tokens.append(run.end())
    child = runstream.start_run(RANKS_EXPERIMENT, "eval", parent_run_id=ranked, tracking_uri=base)
    child.log_metric("eval_acc", 0.91)
    tokens.append(child.end())
    for token in tokens:
        wait_applied(base, token)
    return ranked, child.run_id


MODEL = "churn-model"


def registry(base: str, ranked: str, pause: float = 0.4) -> None:
    """A model with three versions whose aliases and stages move over a few seconds, through MLflow's
        REST API (what MlflowClient sends), then two promotion gates (one refuses a move, one allows one) and
    deployment reports, as a deploy tool sends them."""
    version: tuple[str, dict[str, object]] = (
        "model-versions/create",
        {"name": MODEL, "source": f"runs:/{ranked}/model", "run_id": ranked},
    )
    steps: list[tuple[str, dict[str, object]]] = [
        ("registered-models/create", {"name": MODEL, "description": "Predicts churn"}),
        version,
        version,
        version,
        ("registered-models/alias", {"name": MODEL, "alias": "champion", "version": "1"}),
        ("model-versions/transition-stage", {"name": MODEL, "version": "1", "stage": "Staging"}),
        ("registered-models/alias", {"name": MODEL, "alias": "challenger", "version": "2"}),
        ("model-versions/transition-stage", {"name": MODEL, "version": "1", "stage": "Production"}),
        ("registered-models/alias", {"name": MODEL, "alias": "champion", "version": "2"}),
        ("registered-models/alias", {"name": MODEL, "alias": "challenger", "version": "3"}),
        ("model-versions/transition-stage", {"name": MODEL, "version": "2", "stage": "Production"}),
        ("model-versions/transition-stage", {"name": MODEL, "version": "1", "stage": "Archived"}),
        gate("champion", "tags.validation_status = 'passed'"),
        ("registered-models/alias", {"name": MODEL, "alias": "champion", "version": "3"}),  # refused: not validated
        gate("challenger", "tags.validation_status IS NULL"),
        ("registered-models/alias", {"name": MODEL, "alias": "challenger", "version": "1"}),
        deploy("prod", "2", "release 2.0"),
        deploy("eu-canary", "3", ""),
        deploy("prod", "3", "release 2.1"),
    ]
    with httpx.Client(base_url=base, timeout=60) as http:
        for path, body in steps:
            response = http.post(path if path.startswith("/") else f"/api/2.0/mlflow/{path}", json=body)
            if response.status_code != 403:  # a gate's refusal is part of the story
                response.raise_for_status()
            time.sleep(pause)  # spread in time, so the timeline has spans to draw


def deploy(environment: str, version: str, note: str) -> tuple[str, dict[str, object]]:
    body: dict[str, object] = {"environment": environment, "version": version, "note": note}
    return (f"/api/v1/registered-models/{MODEL}/deployments", body)


def gate(target: str, condition: str) -> tuple[str, dict[str, object]]:
    return ("registered-models/set-tag", {"name": MODEL, "key": f"runstream.gate.{target}", "value": condition})


MONITORED = {"version": "3", "environment": "prod"}
DRIFT_SHIFTS = [0.0, 0.0, 1.0, 1.0]  # the last two windows drift above runstream.drift.psi


def monitoring(base: str, ranked: str) -> None:
    """The training profile of the versions' run, a PSI threshold, and four production windows of
    churn-model v3 in prod (runstream.Monitor), one a minute."""
    rng = np.random.default_rng(5)

    def rows(shift: float) -> dict[str, np.ndarray]:
        return {
            "x": rng.normal(shift, 1.0, 3000),
            "plan": rng.choice(["basic", "pro"], 3000, p=[0.7, 0.3]).astype(object),
        }

    with runstream.start_run(
        RANKS_EXPERIMENT, run_id=ranked, rank=1, tracking_uri=base
    ) as run:  # not rank 0: ends nothing
        run.log_profile("training", rows(0.0))
        wait_applied(base, run.flush())
    tag = {"name": MODEL, "key": "runstream.drift.psi", "value": "0.2"}
    httpx.post(f"{base}/api/2.0/mlflow/registered-models/set-tag", json=tag, timeout=60).raise_for_status()
    start = int(time.time() * 1000) - len(DRIFT_SHIFTS) * 60_000
    with runstream.Monitor(MODEL, MONITORED["version"], MONITORED["environment"], tracking_uri=base) as monitor:
        for i, shift in enumerate(DRIFT_SHIFTS):
            at = start + i * 60_000
            batch = rows(shift)
            monitor.log(
                batch,
                predictions=batch["x"] > 0,
                latency_ms=rng.gamma(2.0, 8.0, 3000),
                window_start=at,
                window_end=at + 60_000,
            )
        wait_applied(base, monitor.flush())


def seed_all(base: str, workdir: Path) -> dict[str, str]:
    """Everything the browser tests and the screenshots show; the ids they need."""
    wait_applied(base, post(base, table_events()))
    ranked, child = ranked_run(base, workdir)
    registry(base, ranked)
    monitoring(base, ranked)
    return {
        "table": experiment_id_for_name(TABLE_EXPERIMENT),
        "distributed": experiment_id_for_name(RANKS_EXPERIMENT),
        "ranked": ranked,
        "child": child,
        "xss": Run(XSS, TABLE_EXPERIMENT).run_id,
    }
