"""Read-your-writes for a run without waiting on the projector. The MLflow client reads a run back
right after writing to it (set_terminated first gets the run, to print its URL), and a projector batch
takes ~70 ms on the embedded engine; so what this process wrote to a run and the projector has not
applied yet is kept here, folded, and laid over what ClickHouse holds when the run is read.

Only writes with a plain effect on the run's record fold: its creation, updates, deletion, params,
tags and latest metrics (and writes that leave the record as it is, such as artifacts). Any other
write (inputs, outputs, an experiment's deletion) blocks the fold until the projector has applied it:
the read waits, as before. An overlay counts the writes it folded; a read uses it only if that is
every write this process remembers to the run (eventlog/write_marks.py): a write that bypassed it
(the SDK's, through the gateway) makes the read wait instead.

Each folded value keeps where its write is in the log; a read lays over only those the projector has
not applied (and forgets the others), so a write from elsewhere that ClickHouse holds is never
covered by an older one from here."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runstream.eventlog.base import Positions, merge_positions
from runstream.eventlog.write_marks import run_entity
from runstream.schemas.events import metric_columns
from runstream.schemas.wire import json_float
from runstream.store.applied import caught_up

# Overlays kept, and the values folded in them all (a run logging many keys that no one reads holds
# one per key until the overlay is forgotten); a forgotten run's reads wait for the projector.
MAX_RUNS = 10_000
MAX_VALUES = 100_000

_RUN = run_entity("")


Pending = tuple[Any, Positions]  # a folded value, and where its write is in the log


def _point_order(point: dict[str, Any]) -> tuple[int, int, float, bool]:
    """MLflow's latest point is the greatest (step, timestamp, value); NaN sorts above every value."""
    number = float(point["value"])  # also MLflow's JSON "NaN" and "Infinity"
    nan = math.isnan(number)
    return point["step"], point["timestamp"], math.inf if nan else number, nan


@dataclass
class RunOverlay:
    writes: int = 0
    blocked: Positions = field(default_factory=dict)  # where the writes that do not fold end
    created: Pending | None = None  # the record RunCreated makes
    info: dict[str, Pending] = field(default_factory=dict)  # run_name, status, end_time, lifecycle_stage
    params: dict[str, Pending] = field(default_factory=dict)
    tags: dict[str, Pending] = field(default_factory=dict)  # value None: deleted
    metrics: dict[str, Pending] = field(default_factory=dict)  # key → latest point
    counted: int = 0  # its size when RunOverlays last counted it

    def add(self, run_id: str, positions: Positions, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.writes += 1
        for name, record in events:
            if record.get("run_id", run_id) == run_id:  # a write may change several runs (and more)
                _FOLDS.get(name, _block)(self, record, positions)

    def size(self) -> int:
        """How many values it holds."""
        return len(self.info) + len(self.params) + len(self.tags) + len(self.metrics) + (self.created is not None)

    def folds(self, applied: Positions) -> bool:
        """Whether every write that does not fold is applied."""
        return caught_up(applied, self.blocked)

    def unseen(self, applied: Positions) -> bool:
        """Whether ClickHouse holds nothing of the run: it was created here, and that is not applied.
        Every write to a run follows its creation in the run's log partition (events.partition_key),
        and the projector applies a partition in order."""
        return self.created is not None and not caught_up(applied, self.created[1])

    def apply(self, found: dict[str, Any] | None, applied: Positions) -> dict[str, Any] | None:
        """The run (store.queries.run's shape) with the unapplied writes laid over it; None where the
        record is not there to lay them over (created elsewhere, its creation not applied yet)."""
        self._forget(applied)
        base = found if found is not None else (self.created[0] if self.created else None)
        if base is None:
            return None
        params = {k: v for k, (v, _) in self.params.items()} | base["params"]  # the first value wins
        tags = base["tags"] | {k: v for k, (v, _) in self.tags.items()}
        metrics = dict(base["metrics"])
        for key, (point, _) in self.metrics.items():
            if key not in metrics or _point_order(point) > _point_order(metrics[key]):
                metrics[key] = point
        return {
            **base,
            **{k: v for k, (v, _) in self.info.items()},
            "params": params,
            "tags": {k: v for k, v in tags.items() if v is not None},
            "metrics": metrics,
        }

    def _forget(self, applied: Positions) -> None:
        if self.created is not None and caught_up(applied, self.created[1]):
            self.created = None
        for pending in (self.info, self.params, self.tags, self.metrics):
            for key in [k for k, (_, at) in pending.items() if caught_up(applied, at)]:
                del pending[key]


def _created(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    record = {
        "run_id": r["run_id"],
        "experiment_id": r["experiment_id"],
        "run_name": r["run_name"] or "",
        "user_id": r["user_id"] or "",
        "status": "RUNNING",
        "start_time": r["start_time"],
        "end_time": None,
        "parent_run_id": r["parent_run_id"],
        "artifact_uri": r["artifact_uri"] or "",
        "lifecycle_stage": "active",
        "params": {},
        "tags": {},
        "metrics": {},
    }
    overlay.created = (record, at)
    overlay.tags.update((k, (v, at)) for k, v in r["tags"].items())


def _updated(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    overlay.info.update((k, (r[k], at)) for k in ("run_name", "status", "end_time") if r[k] is not None)


def _lifecycle(stage: str) -> Callable[[RunOverlay, dict[str, Any], Positions], None]:
    def fold(overlay: RunOverlay, _: dict[str, Any], at: Positions) -> None:
        overlay.info["lifecycle_stage"] = (stage, at)

    return fold


def _params(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    overlay.params = {k: (v, at) for k, v in r["params"].items()} | overlay.params


def _tags(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    overlay.tags.update((k, (v, at)) for k, v in r["tags"].items())


def _tag_deleted(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    overlay.tags[r["key"]] = (None, at)


def _metrics(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    c = metric_columns(r)
    # Sorted by key, then step, timestamp and value (NaN last, as _point_order ranks it): each key's
    # last point is its latest.
    order = np.lexsort((c.values, c.timestamps, c.steps, c.key_index))
    index = c.key_index[order]
    for i in order[np.r_[index[1:] != index[:-1], True]].tolist():
        key = c.keys[c.key_index[i]]
        point = {"value": json_float(float(c.values[i])), "timestamp": int(c.timestamps[i]), "step": int(c.steps[i])}
        held = overlay.metrics.get(key)
        if held is None or _point_order(point) > _point_order(held[0]):
            overlay.metrics[key] = (point, at)


def _unchanged(overlay: RunOverlay, r: dict[str, Any], at: Positions) -> None:
    pass


def _block(overlay: RunOverlay, _: dict[str, Any], at: Positions) -> None:
    merge_positions(overlay.blocked, at)


_FOLDS: dict[str, Callable[[RunOverlay, dict[str, Any], Positions], None]] = {
    "RunCreated": _created,
    "RunUpdated": _updated,
    "RunDeleted": _lifecycle("deleted"),
    "RunRestored": _lifecycle("active"),
    "ParamsLogged": _params,
    "TagsSet": _tags,
    "TagDeleted": _tag_deleted,
    "MetricBatch": _metrics,
    # Not part of the run's record.
    "LoggedModelMetricsLogged": _unchanged,
    "ArtifactLogged": _unchanged,
    "ArtifactsDeleted": _unchanged,
}


class RunOverlays:
    """This process's overlays, by write_marks entity; used from the event loop's thread only."""

    def __init__(self, max_runs: int = MAX_RUNS, max_values: int = MAX_VALUES) -> None:
        self._overlays: OrderedDict[str, RunOverlay] = OrderedDict()
        self._max_runs = max_runs
        self._max_values = max_values
        self._values = 0  # the overlays' sizes as last counted (a read's forgetting shrinks them later)

    def record(self, entity: str, earlier_writes: int, positions: Positions, events: list[tuple[str, Any]]) -> None:
        """Folds a write to the entity; `earlier_writes`: how many writes to it WriteMarks held before."""
        overlay = self._overlays.pop(entity, None)
        if overlay is not None:
            self._values -= overlay.counted
        if overlay is None and (earlier_writes or not entity.startswith(_RUN)):
            return  # it would miss writes made before it
        if overlay is not None and overlay.writes != earlier_writes:
            return  # it missed one: dropped, the run's reads wait
        overlay = overlay or RunOverlay()
        overlay.add(entity.removeprefix(_RUN), positions, events)
        overlay.counted = overlay.size()
        self._values += overlay.counted
        self._overlays[entity] = overlay
        while self._overlays and (len(self._overlays) > self._max_runs or self._values > self._max_values):
            _, forgotten = self._overlays.popitem(last=False)
            self._values -= forgotten.counted

    def get(self, entity: str, writes: int) -> RunOverlay | None:
        """The entity's overlay, if it holds all `writes` this process made to it."""
        overlay = self._overlays.get(entity)
        return overlay if overlay is not None and overlay.writes == writes else None
