"""The integrations' framework-free parts in the project's venv: SystemMetrics on a machine seen
without a GPU, hyperparameter flattening, and what importing runstream leaves unloaded."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from argparse import Namespace
from collections.abc import Mapping
from typing import Any, cast

import pytest

from runstream.sdk.integrations._params import MAX_PARAM_VALUE, flatten_params
from runstream.sdk.integrations.system import SystemMetrics
from runstream.sdk.run import Run

FRAMEWORKS = ("torch", "lightning", "pytorch_lightning", "transformers", "keras", "tensorflow")


class RecordingRun:
    """Stands in for a Run: what SystemMetrics logged, as (step, metrics)."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.lock = threading.Lock()

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        with self.lock:
            self.logged.append((step, dict(metrics)))


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails: as on a machine without NVML


def _system_metrics(run: RecordingRun, interval: float) -> SystemMetrics:
    return SystemMetrics(cast(Run, run), interval)


def test_a_sample_has_cpu_memory_disk_and_network_under_system_and_no_gpu_keys_without_a_gpu(no_gpu: None) -> None:
    sample = _system_metrics(RecordingRun(), 10.0).sample()
    for key in (
        "cpu_utilization_percentage",
        "system_memory_usage_megabytes",
        "system_memory_available_megabytes",
        "system_memory_usage_percentage",
        "disk_usage_percentage",
        "network_receive_megabytes",
        "network_transmit_megabytes",
    ):
        assert isinstance(sample[f"system/{key}"], float), key
    assert 0 <= sample["system/system_memory_usage_percentage"] <= 100
    assert all(k.startswith("system/") for k in sample)
    assert not [k for k in sample if k.startswith("system/gpu_")]


def test_the_thread_logs_a_sample_per_interval_at_consecutive_steps_and_a_last_one_on_stop(no_gpu: None) -> None:
    run = RecordingRun()
    metrics = _system_metrics(run, 0.02).start()
    deadline = time.monotonic() + 10
    while len(run.logged) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    metrics.stop()
    count = len(run.logged)
    assert count >= 4  # three from the thread, one from stop()
    assert [step for step, _ in run.logged] == list(range(count))
    time.sleep(0.1)
    assert len(run.logged) == count  # stopped: nothing more
    metrics.stop()  # a second stop is a no-op
    assert len(run.logged) == count


class FakeNvml:
    """pynvml's calls SystemMetrics makes, for two GPUs; the second reports no power (as some boards)."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Namespace:
        return Namespace(used=2e9 * (h + 1), total=8e9)

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Namespace:
        return Namespace(gpu=30 + h)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if h == 1:
            raise self.NVMLError("Not Supported")
        return 250_000  # mW

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        return 60 + h


def test_each_gpu_is_sampled_under_its_index_and_a_reading_it_lacks_is_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    sample = _system_metrics(RecordingRun(), 10.0).sample()
    gpus = {k.removeprefix("system/"): v for k, v in sample.items() if k.startswith("system/gpu_")}
    assert gpus == {
        "gpu_0_memory_usage_megabytes": 2000.0,
        "gpu_0_memory_total_megabytes": 8000.0,
        "gpu_0_memory_usage_percentage": 25.0,
        "gpu_0_utilization_percentage": 30.0,
        "gpu_0_power_usage_watts": 250.0,
        "gpu_0_temperature_celsius": 60.0,
        "gpu_1_memory_usage_megabytes": 4000.0,
        "gpu_1_memory_total_megabytes": 8000.0,
        "gpu_1_memory_usage_percentage": 50.0,
        "gpu_1_utilization_percentage": 31.0,
        "gpu_1_temperature_celsius": 61.0,
    }


def test_system_metrics_without_psutil_say_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(ImportError, match=r"runstream\[system\]"):
        _system_metrics(RecordingRun(), 1.0)


def test_hyperparameters_are_flattened_with_none_skipped_and_long_values_cut_to_mlflows_limit() -> None:
    params: dict[str, Any] = {
        "lr": 0.1,
        "model": {"layers": 4, "act": None, "head": Namespace(dim=8)},
        "notes": "x" * (MAX_PARAM_VALUE + 10),
        "unset": None,
    }
    assert flatten_params(params) == {
        "lr": "0.1",
        "model/layers": "4",
        "model/head/dim": "8",
        "notes": "x" * MAX_PARAM_VALUE,
    }
    assert flatten_params(Namespace(a=1, b={"c": [1, 2]})) == {"a": "1", "b/c": "[1, 2]"}


def test_importing_runstream_and_the_system_module_loads_no_framework_and_no_psutil() -> None:
    code = (
        "import sys, runstream, runstream.sdk.integrations.system\n"
        f"print(sorted(m for m in {(*FRAMEWORKS, 'psutil', 'pynvml')!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "[]"
