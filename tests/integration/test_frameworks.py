"""The framework integrations (sdk/integrations/) with the real libraries: each
script in tests/frameworks/ trains a tiny model on CPU for a few steps against `runstream serve`, in
a venv of torch, Lightning, Transformers and Keras (cached, tests/venvs.py) layered under this
checkout's wheel with the `system` extra; the run is read back here through runstream.Client."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from tests.integration.roles import REPO
from tests.venvs import REPO_TESTS, cached_python, layered_python

FRAMEWORKS = REPO_TESTS / "frameworks"
CACHED_VENVS = [FRAMEWORKS / "requirements.txt"]  # built ahead (tests/conftest.py)
FRAMEWORK_MODULES = ("torch", "lightning", "transformers", "keras", "psutil", "pynvml")
SYSTEM_KEYS = ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes")

pytestmark = pytest.mark.frameworks


@pytest.fixture(scope="module")
def python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = cached_python(FRAMEWORKS / "requirements.txt")  # minutes the first time on a machine
    venv = tmp_path_factory.mktemp("frameworks") / "venv"
    return layered_python(venv, base, "-c", str(REPO / "constraints.txt"), f"runstream[system] @ {wheel.as_uri()}")


@pytest.fixture(scope="module")
def client(serve: str) -> Iterator[runstream.Client]:
    with runstream.Client(serve) as c:
        yield c


def _train(python: Path, script: str, serve: str) -> dict[str, Any]:
    env = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": ""}  # CPU, the same on any machine
    result = subprocess.run(
        [str(python), str(FRAMEWORKS / script), serve], capture_output=True, text=True, timeout=600, cwd="/", env=env
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    out: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return out


def _run(client: runstream.Client, out: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = client.get_run(out["run_id"], after=out["token"])
    assert run["status"] == "FINISHED"
    return run


def _assert_system_metrics(client: runstream.Client, out: dict[str, Any]) -> None:
    for key in SYSTEM_KEYS:
        history = client.get_metric_history(out["run_id"], key, after=out["token"])
        # stop() always takes a last sample; how many the 0.05 s timer adds depends on the fit's speed.
        assert len(history) >= 1, key
        assert list(history.steps) == list(range(len(history))), key  # the sample index


def test_importing_runstream_beside_the_installed_frameworks_loads_none_of_them(python: Path) -> None:
    code = f"import sys, runstream; print(sorted(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))"
    loaded = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"


def test_lightning_logger_logs_flattened_hyperparameters_every_step_and_system_metrics(
    python: Path, serve: str, client: runstream.Client
) -> None:
    out = _train(python, "lightning_check.py", serve)
    run = _run(client, out)
    assert out["name"] == "lightning" and out["version"] == out["run_id"]
    assert {k: run["params"][k] for k in ("hidden", "optim/name", "optim/lr")} == {
        "hidden": "8",
        "optim/name": "sgd",
        "optim/lr": "0.05",
    }
    loss = client.get_metric_history(out["run_id"], "train_loss", after=out["token"])
    assert list(loss.steps) == list(range(64))  # 8 epochs x 8 batches, log_every_n_steps=1
    np.testing.assert_allclose(loss.values, out["losses"], rtol=1e-6)  # float32 as logged
    assert set(loss.ranks) == {0}
    _assert_system_metrics(client, out)


def test_transformers_callback_logs_arguments_and_model_config_and_each_logged_step(
    python: Path, serve: str, client: runstream.Client
) -> None:
    out = _train(python, "transformers_check.py", serve)
    params = _run(client, out)["params"]
    assert params["learning_rate"] == "0.001" and params["max_steps"] == "6"  # TrainingArguments
    assert params["hidden_size"] == "8" and params["vocab_size"] == "32"  # the model's config
    assert "problem_type" not in params  # None in the config: skipped
    assert all(len(v) <= 6000 for v in params.values())
    loss = client.get_metric_history(out["run_id"], "loss", after=out["token"])
    assert [str(s) for s in loss.steps] == list(out["losses"]) == [str(s) for s in range(1, 7)]
    np.testing.assert_allclose(loss.values, list(out["losses"].values()))
    for key in ("learning_rate", "grad_norm", "train_loss"):  # numeric entries of on_log
        assert key in out["logged_keys"] and len(client.get_metric_history(out["run_id"], key, after=out["token"]))
    _assert_system_metrics(client, out)


def test_keras_callback_logs_optimizer_config_batches_every_n_steps_and_epochs(
    python: Path, serve: str, client: runstream.Client
) -> None:
    out = _train(python, "keras_check.py", serve)
    assert out["backend"] == "torch"
    params = _run(client, out)["params"]
    assert params["optimizer_name"] == "SGD" and float(params["learning_rate"]) == pytest.approx(0.05)
    batch = client.get_metric_history(out["run_id"], "batch_loss", after=out["token"])
    assert list(batch.steps) == list(range(2, 25, 2))  # 3 epochs x 8 batches, every 2nd optimizer step
    for key in ("loss", "val_loss"):
        epochs = client.get_metric_history(out["run_id"], key, after=out["token"])
        assert list(epochs.steps) == [0, 1, 2]
        np.testing.assert_allclose(epochs.values, out["history"][key], rtol=1e-6)
    _assert_system_metrics(client, out)
