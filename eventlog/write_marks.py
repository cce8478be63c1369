"""Where this process last wrote, per run and per experiment: the MLflow client reads right after it
writes and carries no consistency token, so its reads wait for these positions instead. Each entity
also counts its writes, so a record of them kept elsewhere (mlflow_api/run_overlay.py) can tell that
it holds every one."""

from __future__ import annotations

import threading
from collections import OrderedDict

from runstream.eventlog.base import Positions, merge_positions

MAX_ENTITIES = 100_000  # bounded: a forgotten entity's writes were applied long ago


class WriteMarks:
    def __init__(self, max_entities: int = MAX_ENTITIES) -> None:
        self._marks: OrderedDict[str, tuple[Positions, int]] = OrderedDict()  # positions, writes
        self._latest: Positions = {}
        self._max = max_entities
        self._lock = threading.Lock()

    def record(self, positions: Positions, *entities: str) -> None:
        with self._lock:
            merge_positions(self._latest, positions)
            for entity in entities:
                mark, writes = self._marks.pop(entity, ({}, 0))
                self._marks[entity] = (merge_positions(mark, positions), writes + 1)
                if len(self._marks) > self._max:
                    self._marks.popitem(last=False)

    def of(self, *entities: str) -> Positions:
        """The positions a read of these entities must wait for (empty: nothing written here)."""
        with self._lock:
            wanted: Positions = {}
            for entity in entities:
                merge_positions(wanted, self._marks.get(entity, ({}, 0))[0])
            return wanted

    def mark(self, entity: str) -> tuple[Positions, int]:
        """What `of` says of one entity, and how many writes to it this process remembers."""
        with self._lock:
            positions, writes = self._marks.get(entity, ({}, 0))
            return dict(positions), writes

    def latest(self) -> Positions:
        """Every write of this process: what a search across entities waits for."""
        with self._lock:
            return dict(self._latest)


def run_entity(run_id: str) -> str:
    return f"run:{run_id}"


def experiment_entity(experiment_id: str) -> str:
    return f"experiment:{experiment_id}"


def model_entity(model_id: str) -> str:
    return f"model:{model_id}"
