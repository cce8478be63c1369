"""Metric points waiting to be sent, kept as columns (no per-point objects), with a bound."""

from __future__ import annotations

import threading
from array import array
from collections.abc import Mapping
from typing import Literal

import numpy as np

from runstream.schemas.events import MetricColumns

OnFull = Literal["block", "raise"]


class BufferFull(RuntimeError):
    """The metric buffer is at capacity and on_full="raise" was chosen."""


class MetricBuffer:
    """`changed` is the lock and condition of whoever drains it (the sender): an add that makes the
    buffer non-empty or reach `wake_at` points notifies it."""

    def __init__(
        self, capacity: int, on_full: OnFull, changed: threading.Condition | None = None, wake_at: int | None = None
    ) -> None:
        if on_full not in ("block", "raise"):
            raise ValueError("on_full must be 'block' or 'raise'")
        self.capacity = capacity
        self.on_full = on_full
        self.changed = changed or threading.Condition()
        self._wake_at = min(capacity, wake_at or capacity)
        self._reset()

    def _reset(self) -> None:
        self._keys: dict[str, int] = {}
        self._key_index = array("H")
        self._values = array("d")
        self._steps = array("q")
        self._timestamps = array("q")

    def __len__(self) -> int:
        return len(self._values)

    def _key(self, key: str) -> int:
        index = self._keys.get(key)
        if index is None:
            if len(self._keys) == 65535:
                raise ValueError("more than 65535 distinct metric keys between two sends")
            index = self._keys[key] = len(self._keys)
        return index

    def _make_room(self, n: int) -> None:
        """Called with the lock held."""
        if n > self.capacity:
            raise ValueError(f"{n} points do not fit a buffer of {self.capacity}")
        while len(self._values) + n > self.capacity:
            if self.on_full == "raise":
                raise BufferFull(f"{len(self._values)} metric points are waiting to be sent")
            self.changed.notify_all()  # wake the sender
            self.changed.wait()

    def _added(self, before: int) -> None:
        """Called with the lock held, after an add."""
        if before == 0 or before < self._wake_at <= len(self._values):
            self.changed.notify_all()

    def add(self, metrics: Mapping[str, float], step: int, timestamp: int) -> None:
        with self.changed:
            self._make_room(len(metrics))
            before = len(self._values)
            for key, value in metrics.items():
                self._key_index.append(self._key(key))
                self._values.append(float(value))
                self._steps.append(step)
                self._timestamps.append(timestamp)
            self._added(before)

    def add_arrays(self, key: str, values: np.ndarray, steps: np.ndarray, timestamps: np.ndarray) -> None:
        if not len(values) == len(steps) == len(timestamps):
            raise ValueError("values, steps and timestamps differ in length")
        with self.changed:
            self._make_room(len(values))
            before = len(self._values)
            self._key_index.frombytes(np.full(len(values), self._key(key), "<u2").tobytes())
            self._values.frombytes(np.ascontiguousarray(values, "<f8").tobytes())
            self._steps.frombytes(np.ascontiguousarray(steps, "<i8").tobytes())
            self._timestamps.frombytes(np.ascontiguousarray(timestamps, "<i8").tobytes())
            self._added(before)

    def drain(self, run_id: str, rank: int, node: str) -> MetricColumns | None:
        with self.changed:
            if not self._values:
                return None
            columns = MetricColumns(
                run_id=run_id,
                rank=rank,
                node=node,
                keys=list(self._keys),
                key_index=np.frombuffer(self._key_index, np.uint16),
                values=np.frombuffer(self._values, np.float64),
                steps=np.frombuffer(self._steps, np.int64),
                timestamps=np.frombuffer(self._timestamps, np.int64),
            )
            self._reset()
            self.changed.notify_all()  # room again for blocked loggers
            return columns
