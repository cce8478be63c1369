"""Hugging Face Transformers: `Trainer(..., callbacks=[RunstreamCallback(experiment="bert")])`.

Params: the TrainingArguments and the model's config (MLflow's callback logs the same), nested
values flattened to `a/b`, each cut to MLflow's 6000 characters. Metrics: the numeric entries of
each `on_log` at the trainer's global step, on every rank (each point carries its rank)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from runstream.sdk.integrations._params import flatten_params
from runstream.sdk.integrations._runs import RunHolder, RunOptions
from runstream.sdk.run import Run


class RunstreamCallback(TrainerCallback):  # type: ignore[misc]  # transformers is untyped where runstream is checked
    def __init__(
        self,
        *,
        run: Run | None = None,
        **options: Unpack[RunOptions],
    ) -> None:
        self._runs = RunHolder(run, options)

    @property
    def run(self) -> Run | None:
        return self._runs.get() if self._runs.started else None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        run = self._runs.get(rank=args.process_index)
        if state.is_world_process_zero:  # the same on every rank: sent once
            config = model.config.to_dict() if getattr(model, "config", None) is not None else {}
            # The arguments win a clash of names, as in MLflow's callback.
            run.log_params(flatten_params({**config, **args.to_dict()}))

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        numbers = {
            k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if numbers:
            self._runs.get(rank=args.process_index).log_metrics(numbers, state.global_step)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._runs.end("FINISHED")
