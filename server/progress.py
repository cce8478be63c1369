"""A progress bar for long commands (archive, replay): done out of total, the rate, click's ETA; on
stderr, so that a command's summary on stdout stays clean."""

from __future__ import annotations

import sys
import time
from typing import Any

import click


class ProgressBar:
    """Fed (done, total, points) as a job goes; a new total starts a new bar (a job's next pass)."""

    def __init__(self, label: str, unit: str) -> None:
        self._label = label
        self._unit = unit
        self._bar: Any = None
        self._total = -1
        self._done = 0
        self._started = time.monotonic()

    def __call__(self, done: int, total: int, points: int | None = None) -> None:
        if total != self._total:
            self.close()
            self._bar = click.progressbar(
                length=max(total, 1), label=self._label, file=sys.stderr, show_pos=True, item_show_func=str
            ).__enter__()
            self._total, self._done, self._started = total, 0, time.monotonic()
        seconds = max(time.monotonic() - self._started, 1e-3)
        rate = f"{done / seconds:,.0f} {self._unit}/s" + (f", {points / seconds:,.0f} points/s" if points else "")
        self._bar.update(done - self._done, rate)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
