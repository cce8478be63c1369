"""System metrics (CPU, memory, disk, network, NVIDIA GPUs) sampled by a daemon thread into a run.

Keys are MLflow's (mlflow.system_metrics), under `system/`, so dashboards and MLflow clients read
them alike; the step is the sample's index. Every rank samples and logs through its own run, so each
point carries its rank: on a multi-node job each node's load is its own series."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

_log = logging.getLogger(__name__)


class MetricsSink(Protocol):
    """Where samples go: a Run."""

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None: ...


PREFIX = "system/"
_MB = 1e6  # MLflow reports megabytes of 10^6 bytes


def _psutil() -> Any:
    try:
        import psutil
    except ImportError as e:
        raise ImportError("system metrics need psutil: pip install 'runstream[system]'") from e
    return psutil


class _Gpus:
    """NVML's view of the GPUs; none (and no error) without the library, a driver or a GPU."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # ImportError, or pynvml.NVMLError (no libnvidia-ml, no driver)
            self.handles = []

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, handle in enumerate(self.handles):
            out.update({f"gpu_{i}_{name}": value for name, value in self._read(handle).items()})
        return out

    def _read(self, handle: Any) -> dict[str, float]:
        nvml, out = self.nvml, {}
        memory = _optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if memory is not None:
            out["memory_usage_megabytes"] = memory.used / _MB
            out["memory_total_megabytes"] = memory.total / _MB
            out["memory_usage_percentage"] = 100.0 * memory.used / memory.total
        readings: dict[str, Callable[[], float]] = {
            "utilization_percentage": lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu,
            "power_usage_watts": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,  # NVML reports mW
            "temperature_celsius": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        }
        for name, read in readings.items():
            value = _optional(read)
            if value is not None:
                out[name] = float(value)
        return out

    def close(self) -> None:
        if self.handles:
            _optional(self.nvml.nvmlShutdown)


def _optional(read: Callable[[], Any]) -> Any:
    """One reading a device may not support (power on some boards): absent rather than fatal."""
    try:
        return read()
    except Exception:
        return None


class SystemMetrics:
    """Samples every `interval` seconds on a daemon thread and logs to `run`; `stop()` takes a last
    sample (so even a run shorter than the interval has one) and ends the thread."""

    def __init__(self, run: MetricsSink, interval: float = 10.0, disk_path: str = "/") -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.psutil = _psutil()
        self.run = run
        self.interval = interval
        self.disk_path = disk_path
        self.gpus = _Gpus()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runstream-system-metrics", daemon=True)
        self.psutil.cpu_percent(None)  # the first call only starts psutil's CPU-time window
        # Disk and network I/O are counted from here, as MLflow does (cumulative over the run).
        self._disk0 = self.psutil.disk_io_counters()
        self._net0 = self.psutil.net_io_counters()

    def sample(self) -> dict[str, float]:
        """One reading of every metric, keyed with the `system/` prefix."""
        ps = self.psutil
        memory = ps.virtual_memory()
        disk = ps.disk_usage(self.disk_path)
        out = {
            "cpu_utilization_percentage": float(ps.cpu_percent(None)),
            "system_memory_usage_megabytes": (memory.total - memory.available) / _MB,
            "system_memory_available_megabytes": memory.available / _MB,
            "system_memory_usage_percentage": float(memory.percent),
            "disk_usage_percentage": float(disk.percent),
            "disk_usage_megabytes": disk.used / _MB,
            "disk_available_megabytes": disk.free / _MB,
        }
        io = ps.disk_io_counters()
        if io is not None and self._disk0 is not None:  # None where the kernel exposes no disk stats
            out["disk_read_megabytes"] = (io.read_bytes - self._disk0.read_bytes) / _MB
            out["disk_write_megabytes"] = (io.write_bytes - self._disk0.write_bytes) / _MB
        net = ps.net_io_counters()
        if net is not None and self._net0 is not None:
            out["network_receive_megabytes"] = (net.bytes_recv - self._net0.bytes_recv) / _MB
            out["network_transmit_megabytes"] = (net.bytes_sent - self._net0.bytes_sent) / _MB
        out.update(self.gpus.sample())
        return {PREFIX + key: value for key, value in out.items()}

    def _log_sample(self) -> None:
        self.run.log_metrics(self.sample(), step=self.samples)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._log_sample()
            except Exception:  # a full buffer (on_full="raise"), a failing reading: skip this sample
                _log.warning("system metrics: a sample was skipped", exc_info=True)

    def start(self) -> SystemMetrics:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self._log_sample()
        self.gpus.close()
