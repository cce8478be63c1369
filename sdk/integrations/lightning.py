"""Lightning: `Trainer(logger=RunstreamLogger(experiment="mnist"))`.

Unlike Lightning's own loggers, metrics are logged on every rank, not only rank 0: each point
carries its rank (runstream keeps one series per rank), so a straggling or diverging rank shows.
Start N ranks on one run by passing the same `run_id` (or $RUNSTREAM_RUN_ID) to each; params and
the run's end are rank 0's."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any, Unpack

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from runstream.sdk.integrations._params import flatten_params
from runstream.sdk.integrations._runs import RunHolder, RunOptions
from runstream.sdk.run import DEFAULT_EXPERIMENT, Run

_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED"}


class RunstreamLogger(Logger):  # type: ignore[misc]  # Lightning is untyped where runstream is checked
    def __init__(
        self,
        *,
        run: Run | None = None,
        **options: Unpack[RunOptions],
    ) -> None:
        super().__init__()
        self._runs = RunHolder(run, options)

    @property
    def experiment(self) -> Run:
        """The run (started on first use, with the rank Lightning assigned this process)."""
        return self._runs.get(rank=getattr(rank_zero_only, "rank", None))

    @property
    def name(self) -> str:
        return self._runs.experiment_name or DEFAULT_EXPERIMENT

    @property
    def version(self) -> str:
        return self.experiment.run_id

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        run = self.experiment
        if run.rank == 0:  # the same on every rank: sent once
            run.log_params(flatten_params(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.experiment.log_metrics({k: float(v) for k, v in metrics.items()}, step or 0)

    def finalize(self, status: str) -> None:
        if self._runs.started:
            self._runs.end(_STATUS.get(status, "FINISHED"))
