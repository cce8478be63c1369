"""Keras 3 (any backend): `model.fit(..., callbacks=[RunstreamCallback(experiment="mlp")])`.

Metric names follow MLflow's Keras autologging: epoch logs under their own names (`loss`,
`val_loss`) at step = epoch; batch logs, every `log_every_n_steps` optimizer steps, as `batch_<name>`
at step = the optimizer's iteration count. The optimizer's config is logged as params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import keras

from runstream.sdk.integrations._params import flatten_params
from runstream.sdk.integrations._runs import RunHolder, RunOptions
from runstream.sdk.run import Run


def _numbers(logs: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        try:
            out[prefix + key] = float(value)  # Python numbers, NumPy or backend scalars
        except (TypeError, ValueError):
            continue  # not a scalar: nothing to plot
    return out


class RunstreamCallback(keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped where runstream is checked
    def __init__(
        self,
        *,
        run: Run | None = None,
        log_every_n_steps: int | None = None,
        **options: Unpack[RunOptions],
    ) -> None:
        super().__init__()
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValueError("log_every_n_steps must be at least 1")
        self.log_every_n_steps = log_every_n_steps
        self._runs = RunHolder(run, options)

    @property
    def run(self) -> Run:
        return self._runs.get()

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        params = {"optimizer_name": type(optimizer).__name__, **optimizer.get_config()}
        self.run.log_params(flatten_params(params))

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.log_every_n_steps is None:
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))  # across epochs, unlike `batch`
        if step % self.log_every_n_steps == 0:
            self.run.log_metrics(_numbers(logs, "batch_"), step)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.run.log_metrics(_numbers(logs), epoch)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._runs.end("FINISHED")
