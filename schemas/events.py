"""Building events: the common header, the partition key, and the metric batch's packed columns."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

AGENT = "runstream/0.1.0"

EXPERIMENT_EVENTS = frozenset(
    {
        "ExperimentCreated",
        "ExperimentRenamed",
        "ExperimentDeleted",
        "ExperimentRestored",
        "ExperimentTagSet",
        "ExperimentTagDeleted",
    }
)


@cache
def client_identity() -> dict[str, Any]:
    """Who produces events from this process (one random client id per process; a forked child is
    another process, with its own id and pid). Every event's header carries it."""
    identity = _identity.get(os.getpid())
    if identity is None:
        _identity.clear()
        identity = _identity[os.getpid()] = _new_identity()
    return identity


_identity: dict[int, dict[str, Any]] = {}


def _new_identity() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = os.environ.get("USER", "")
    return {
        "client_id": uuid.uuid4().hex,
        "user": user,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "agent": AGENT,
    }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def header(event_time: int | None = None, client: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().bytes,
        "event_time": now_ms() if event_time is None else event_time,
        "client": client or client_identity(),
    }


def event(name: str, /, **fields: Any) -> tuple[str, dict[str, Any]]:
    """An event of schema `name` with a fresh header; fields are the schema's other fields."""
    return name, {"header": header(), **fields}


def partition_key(name: str, record: dict[str, Any]) -> str:
    """Events of one run (or one experiment, one logged model, one registered model, one webhook, one
    served model's production windows) share a key, so the log keeps them in order."""
    if "model_name" in record:
        return f"served:{record['model_name']}"
    if "webhook_id" in record:
        return str(record["webhook_id"])
    if "registered_model_id" in record:
        return str(record["registered_model_id"])
    if name in EXPERIMENT_EVENTS:
        return str(record["experiment_id"])
    return str(record["run_id"] if "run_id" in record else record["model_id"])


@dataclass
class MetricColumns:
    """One metric batch as numpy columns (views on the message bytes, no per-point objects)."""

    run_id: str
    rank: int
    node: str
    keys: list[str]
    key_index: np.ndarray  # uint16
    values: np.ndarray  # float64
    steps: np.ndarray  # int64
    timestamps: np.ndarray  # int64 ms

    def __len__(self) -> int:
        return len(self.values)


_KEY_INDEX = np.dtype("<u2")
_VALUES = np.dtype("<f8")
_INT64 = np.dtype("<i8")


def metric_batch_fields(columns: MetricColumns) -> dict[str, Any]:
    return {
        "run_id": columns.run_id,
        "rank": columns.rank,
        "node": columns.node,
        "keys": columns.keys,
        "key_index_le": np.ascontiguousarray(columns.key_index, _KEY_INDEX).tobytes(),
        "values_le": np.ascontiguousarray(columns.values, _VALUES).tobytes(),
        "steps_le": np.ascontiguousarray(columns.steps, _INT64).tobytes(),
        "timestamps_le": np.ascontiguousarray(columns.timestamps, _INT64).tobytes(),
    }


def metric_columns(record: dict[str, Any]) -> MetricColumns:
    """Reads the packed columns of a MetricBatch record; raises ValueError if they disagree in length."""
    key_index = np.frombuffer(record["key_index_le"], _KEY_INDEX)
    values = np.frombuffer(record["values_le"], _VALUES)
    steps = np.frombuffer(record["steps_le"], _INT64)
    timestamps = np.frombuffer(record["timestamps_le"], _INT64)
    return MetricColumns(
        run_id=record["run_id"],
        rank=record["rank"],
        node=record["node"],
        keys=record["keys"],
        key_index=key_index,
        values=values,
        steps=steps,
        timestamps=timestamps,
    )


DEFAULT_EXPERIMENT_ID = "0"


def experiment_id_for_name(name: str) -> str:
    """Experiment ids are derived from the name, so every process that starts a run in experiment
    "x" names the same experiment without asking a server (MLflow's "Default" keeps id "0")."""
    if name == "Default":
        return DEFAULT_EXPERIMENT_ID
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big") >> 1)  # a positive int64, decimal like MLflow's ids
