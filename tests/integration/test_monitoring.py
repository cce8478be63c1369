"""Production monitoring end to end on `runstream serve`: a training run logs its data's profile
through the SDK, a model server logs windows through `runstream.Monitor`, the monitoring API answers
requests, latency and drift per window, and a drift threshold set as a model tag sends one signed
webhook per crossing to a local receiver, retried when the receiver refuses it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import numpy as np

import runstream
from tests.webhooks.receiver import receiver

API = "/api/2.0/mlflow"
MINUTE = 60_000
N = 2000


def rows(rng: np.random.Generator, shift: float) -> dict[str, Any]:
    return {"x": rng.normal(shift, 1.0, N), "plan": rng.choice(["basic", "pro"], N, p=[0.7, 0.3]).astype(object)}


def test_windows_drift_and_one_alert_per_crossing(serve: str) -> None:
    rng = np.random.default_rng(3)
    name = f"monitored-{uuid.uuid4().hex[:8]}"
    http = httpx.Client(base_url=serve, timeout=60)
    with runstream.start_run(f"monitoring-{name}", tracking_uri=serve) as run:
        run.log_profile("training", rows(rng, 0.0))
    http.post(f"{API}/registered-models/create", json={"name": name}).raise_for_status()
    version = {"name": name, "source": "s3://m/1", "run_id": run.run_id}
    http.post(f"{API}/model-versions/create", json=version).raise_for_status()
    http.post(f"{API}/registered-models/set-tag", json={"name": name, "key": "runstream.drift.psi", "value": "0.2"})

    shifts = [0.0, 1.0, 1.0, 0.0, 1.0]  # above the threshold from the second window, then again from the fifth
    start = int(time.time() * 1000) - 10 * MINUTE
    with receiver() as r:
        hook = {"name": "drift", "url": r.url, "events": [{"entity": "MODEL_VERSION", "action": "DRIFT_DETECTED"}]}
        http.post(f"{API}/webhooks", json=hook).raise_for_status()
        r.statuses = [503, 503]  # the first two attempts are refused: retried
        with runstream.Monitor(name, 1, "prod", tracking_uri=serve) as monitor:
            for i, shift in enumerate(shifts):
                at = start + i * MINUTE
                batch = rows(rng, shift)
                monitor.log(
                    batch,
                    predictions=batch["x"] > 0,
                    latency_ms=rng.gamma(2.0, 10.0, N),
                    window_start=at,
                    window_end=at + MINUTE,
                )
        alerts = r.wait_for(lambda taken: len(taken) >= 2, timeout=60)
        time.sleep(1.0)  # nothing more comes
        alerts = r.taken()
    assert [a.event for a in alerts] == ["model_version.drift_detected"] * 2
    data = [a.json["data"] for a in alerts]
    assert [d["window_start"] for d in data] == [start + MINUTE, start + 4 * MINUTE]
    assert all(d["name"] == name and d["version"] == "1" and d["environment"] == "prod" for d in data)
    assert {(c["feature"], c["statistic"]) for c in data[0]["crossed"]} == {("x", "psi")}
    assert (
        r.received[0].answered == 503
        and r.received[0].headers["x-mlflow-delivery-id"] == alerts[0].headers["x-mlflow-delivery-id"]
    )

    answer = http.get(f"/api/v1/registered-models/{name}/monitoring", params={"version": 1, "environment": "prod"})
    assert answer.status_code == 200, answer.text
    windows = answer.json()["windows"]
    assert [w["at"] for w in windows] == [start + i * MINUTE for i in range(5)]
    assert all(w["requests"] == N and 10 < w["latency_ms"]["p50"] < 30 for w in windows)
    psi = [w["drift"]["x"]["psi"] for w in windows]
    assert [p > 0.2 for p in psi] == [s > 0 for s in shifts]
    assert set(windows[0]["drift"]) == {"x", "plan"}  # prediction and latency have no training reference
    bad = http.get(
        f"/api/v1/registered-models/{name}/monitoring",
        params={"version": 1, "environment": "prod", "reference": "nope"},
    )
    assert bad.status_code == 400 and "profile:NAME" in bad.json()["message"]


def test_log_inference_from_a_request_handler_is_sent_when_the_process_exits(serve: str) -> None:
    name = f"served-{uuid.uuid4().hex[:8]}"
    script = (
        "import numpy as np, runstream\n"
        "for i in range(3):\n"
        f"    runstream.log_inference({name!r}, 2, 'eu-canary', {{'x': np.arange(10.0) + i}}, predictions=np.ones(10),"
        f" tracking_uri={serve!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    http = httpx.Client(base_url=serve, timeout=60)
    http.post(f"{API}/registered-models/create", json={"name": name}).raise_for_status()
    params: dict[str, str | int] = {"version": 2, "environment": "eu-canary", "reference": "windows:0:1"}
    deadline = time.monotonic() + 30
    while True:
        windows = http.get(f"/api/v1/registered-models/{name}/monitoring", params=params).json()["windows"]
        if sum(w["requests"] for w in windows) == 30 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sum(w["requests"] for w in windows) == 30  # three calls, ten requests each, flushed at exit
