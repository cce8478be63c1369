"""`runstream.start_run(...)`: a run that one or many processes (ranks) write at once."""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from runstream.schemas.artifact_paths import artifact_dir, join
from runstream.schemas.events import client_identity, experiment_id_for_name, now_ms
from runstream.sdk.artifacts import ArtifactClient
from runstream.sdk.buffer import OnFull
from runstream.sdk.profiles import summarize_all
from runstream.sdk.sender import OutboxSettings, sender_for
from runstream.sdk.transport import api_uri, get_tracking_uri, http_auth, transport_for

if TYPE_CHECKING:
    from runstream.sdk.integrations.system import SystemMetrics

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
DEFAULT_EXPERIMENT = "Default"


class Run:
    """Logging methods buffer and return at once; a background sender delivers the events."""

    def __init__(
        self,
        run_id: str,
        experiment_id: str,
        rank: int,
        node: str,
        tracking_uri: str,
        flush_interval: float,
        batch_points: int,
        max_buffered_points: int,
        on_full: OnFull,
        wait_on_end: bool = True,
    ) -> None:
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.rank = rank
        self.node = node
        self.tracking_uri = tracking_uri
        self._outbox = sender_for(tracking_uri.rstrip("/"), transport_for).outbox(
            lambda buffer: buffer.drain(run_id, rank, node),
            OutboxSettings(flush_interval, batch_points, max_buffered_points, on_full),
        )
        self._buffer = self._outbox.buffer
        self._wait_on_end = wait_on_end
        self._end_token: str | None = None
        self._artifacts: ArtifactClient | None = None
        self._system_metrics: SystemMetrics | None = None

    def announce(
        self, experiment: str, run_name: str | None, tags: Mapping[str, Any], parent_run_id: str | None
    ) -> None:
        """Every rank sends these; both are idempotent in the projection."""
        self._outbox.enqueue(
            "ExperimentCreated", experiment_id=self.experiment_id, name=experiment, artifact_location=None, tags={}
        )
        self._outbox.enqueue(
            "RunCreated",
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            run_name=run_name,
            user_id=client_identity()["user"],
            start_time=now_ms(),
            tags={k: str(v) for k, v in tags.items()},
            parent_run_id=parent_run_id,
            artifact_uri=None,
        )

    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self.log_metrics({key: value}, step, timestamp)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        self._buffer.add(metrics, step, now_ms() if timestamp is None else timestamp)

    def log_metric_arrays(self, key: str, values: Any, steps: Any, timestamps: Any | None = None) -> None:
        """Many points of one key at once, from array-likes (no per-point Python work)."""
        values = np.asarray(values, np.float64)
        stamps = np.full(len(values), now_ms(), np.int64) if timestamps is None else np.asarray(timestamps)
        self._buffer.add_arrays(key, values, np.asarray(steps, np.int64), stamps.astype(np.int64, copy=False))

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._outbox.enqueue("ParamsLogged", run_id=self.run_id, params={k: str(v) for k, v in params.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._outbox.enqueue("TagsSet", run_id=self.run_id, tags={k: str(v) for k, v in tags.items()})

    def delete_tag(self, key: str) -> None:
        self._outbox.enqueue("TagDeleted", run_id=self.run_id, key=key)

    def log_profile(self, name: str, data: Any) -> None:
        """The profile of a dataset (a DataFrame, or names → arrays) as this run saw it, e.g. "training":
        per column, counts per value bucket or category (sdk/profiles.py). Production windows
        of the run's model versions are compared with it (drift)."""
        features = summarize_all(data)
        rows = max((f["count"] + f["missing"] for f in features), default=0)
        self._outbox.enqueue("ProfileLogged", run_id=self.run_id, name=name, rows=rows, features=features)

    def log_artifact(self, local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Uploads one file as `artifact_path`/its name; records path, size and sha256 once stored."""
        file = Path(local_path)
        self._log_files([(file, join(artifact_dir(artifact_path or ""), file.name))])

    def log_artifacts(self, local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Uploads every file under `local_dir`, keeping the folder structure below `artifact_path`."""
        root = Path(local_dir)
        folder = artifact_dir(artifact_path or "")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        self._log_files([(p, join(folder, p.relative_to(root).as_posix())) for p in files])

    def _log_files(self, files: list[tuple[Path, str]]) -> None:
        if self._artifacts is None:
            root = os.environ.get("RUNSTREAM_ARTIFACT_ROOT")  # set: direct uploads, no API needed
            self._artifacts = ArtifactClient(None if root else api_uri(self.tracking_uri), root, auth=http_auth())
        # Recorded only after the bytes are stored: a listed artifact can always be downloaded.
        for stored in self._artifacts.upload(self.run_id, files):
            self._outbox.enqueue(
                "ArtifactLogged",
                run_id=self.run_id,
                path=stored.path,
                size=stored.size,
                sha256=stored.sha256,
                uri=stored.uri,
            )

    def start_system_metrics(self, interval: float = 10.0) -> SystemMetrics:
        """Samples CPU, memory, disk, network and GPUs into this run every `interval` seconds (keys
        under `system/`) until `end()`; needs the `system` extra (psutil; nvidia-ml-py for GPUs)."""
        from runstream.sdk.integrations.system import SystemMetrics  # psutil only when asked for

        if self._system_metrics is None:
            self._system_metrics = SystemMetrics(self, interval).start()
        return self._system_metrics

    def flush(self, timeout: float | None = None) -> str:
        """Blocks until everything logged so far is durable; returns a consistency token for reads."""
        return self._outbox.flush(timeout)

    def end(self, status: str = "FINISHED", wait: bool | None = None) -> str:
        """Sends what is buffered; rank 0 also marks the run ended. Waits until that is durable and
        returns the last consistency token. With `wait=False` (default: the run's `wait_on_end`) it
        returns at once, with the token of what was durable by then: the rest goes out with the
        process's next send, so a sweep of many small runs shares sends instead of waiting a round
        trip per run; `runstream.flush()` waits for it, and the process does at exit."""
        if self._end_token is not None:
            return self._end_token
        if self._system_metrics is not None:
            self._system_metrics.stop()  # its last sample goes out with the rest
        waited = False
        try:
            if self.rank == 0:  # the end mark after the metrics, in the same send
                fields = {"status": status, "end_time": now_ms(), "run_name": None}
                self._outbox.enqueue("RunUpdated", last=True, run_id=self.run_id, **fields)
            if self._wait_on_end if wait is None else wait:
                self._end_token = self._outbox.flush()
                waited = True
            else:
                self._end_token = self._outbox.end_without_waiting()
            return self._end_token
        finally:
            if waited or self._end_token is None:  # an outbox ended without waiting is the sender's to drop
                self._outbox.close()
            if self._artifacts is not None:
                self._artifacts.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end("FINISHED" if exc_type is None else ("KILLED" if exc_type is KeyboardInterrupt else "FAILED"))


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    rank: int | None = None,
    node: str | None = None,
    parent_run_id: str | None = None,
    tracking_uri: str | None = None,
    flush_interval: float = 1.0,
    batch_points: int = 100_000,
    max_buffered_points: int = 2_000_000,
    on_full: OnFull = "block",
    log_system_metrics: bool = False,
    system_metrics_interval: float = 10.0,
    wait_on_end: bool = True,
) -> Run:
    """Starts a run, or joins it when `run_id` (else $RUNSTREAM_RUN_ID) names one: N ranks starting
    the same id make one run. `rank` defaults to $RANK, else 0; only rank 0 ends the run.
    `log_system_metrics` samples the machine into the run (see Run.start_system_metrics).
    `wait_on_end=False`: leaving the `with` block (or `end()`) does not wait for the run's events to
    be durable; `runstream.flush()` does, for every run of the process (see Run.end)."""
    run_id = run_id or os.environ.get("RUNSTREAM_RUN_ID") or uuid.uuid4().hex
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not 32 lowercase hex characters")
    rank = int(os.environ.get("RANK", "0")) if rank is None else rank
    experiment = experiment or DEFAULT_EXPERIMENT
    experiment_id = experiment_id_for_name(experiment)
    run = Run(
        run_id=run_id,
        experiment_id=experiment_id,
        rank=rank,
        node=node or socket.gethostname(),
        tracking_uri=tracking_uri or get_tracking_uri(),
        flush_interval=flush_interval,
        batch_points=batch_points,
        max_buffered_points=max_buffered_points,
        on_full=on_full,
        wait_on_end=wait_on_end,
    )
    run.announce(experiment, run_name, tags or {}, parent_run_id)
    if log_system_metrics:
        run.start_system_metrics(system_metrics_interval)
    return run
