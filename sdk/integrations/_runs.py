"""The run an integration logs to: one given by the caller, or one it starts (and so ends)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from runstream.sdk.run import Run, start_run


class RunOptions(TypedDict, total=False):
    """`start_run`'s arguments an integration passes on when it starts the run itself."""

    experiment: str | None
    run_name: str | None
    tracking_uri: str | None
    run_id: str | None
    tags: Mapping[str, Any] | None
    log_system_metrics: bool
    system_metrics_interval: float


class RunHolder:
    """Starts its run lazily, on first use: by then the framework knows the process's rank."""

    def __init__(self, run: Run | None, options: RunOptions) -> None:
        self._run = run
        self.owns_run = run is None  # a run handed in is the caller's to end
        self.experiment_name = options.get("experiment")
        self._options = options

    @property
    def started(self) -> bool:
        return self._run is not None

    def get(self, rank: int | None = None) -> Run:
        if self._run is None:
            self._run = start_run(rank=rank, **self._options)
        return self._run

    def end(self, status: str) -> None:
        """Ends the run this holder started; a run handed in stays open."""
        if self.owns_run and self._run is not None:
            self._run.end(status)
