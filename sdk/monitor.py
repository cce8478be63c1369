"""Production monitoring from the model server: `runstream.Monitor(model, version, environment)`
summarises each batch of requests it is given (features, predictions, latency) where the rows are, and
sends one InferenceLogged event per window through the SDK's sender, as training metrics travel; the
rows themselves never leave the server."""

from __future__ import annotations

import atexit
import threading
from types import TracebackType
from typing import Any

from runstream.schemas.events import now_ms
from runstream.schemas.validation import environment_problem
from runstream.sdk.profiles import columns, summarize, summarize_all
from runstream.sdk.sender import OutboxSettings, sender_for
from runstream.sdk.transport import get_tracking_uri, transport_for


class Monitor:
    def __init__(
        self,
        model: str,
        version: str | int,
        environment: str,
        tracking_uri: str | None = None,
        flush_interval: float = 5.0,
    ) -> None:
        problem = environment_problem(environment)
        if problem is not None:
            raise ValueError(problem)
        self.model, self.version, self.environment = model, int(version), environment
        uri = (tracking_uri or get_tracking_uri()).rstrip("/")
        # No metric buffer to drain: a window is one event, sent within flush_interval.
        self._outbox = sender_for(uri, transport_for).outbox(
            lambda _: None, OutboxSettings(flush_interval, 1, 1, "block")
        )

    def log(
        self,
        features: Any,
        predictions: Any = None,
        latency_ms: Any = None,
        window_start: int | None = None,
        window_end: int | None = None,
    ) -> None:
        """One window: the requests' features (a DataFrame, or names → arrays), and optionally their
        predictions and latencies (ms). The window spans window_start..window_end (ms; default now)."""
        named = columns(features)
        rows = {len(c) for c in named.values()}
        for extra in (predictions, latency_ms):
            if extra is not None:
                rows.add(len(extra))
        if len(rows) > 1:
            raise ValueError(f"features, predictions and latencies must have one row per request; got {sorted(rows)}")
        summaries = summarize_all(named)
        if predictions is not None:
            summaries.append(summarize("prediction", predictions))
        if latency_ms is not None:
            summaries.append(summarize("latency_ms", latency_ms))
        end = now_ms() if window_end is None else window_end
        self._outbox.enqueue(
            "InferenceLogged",
            model_name=self.model,
            version=self.version,
            environment=self.environment,
            window_start=end if window_start is None else window_start,
            window_end=end,
            requests=rows.pop() if rows else 0,
            features=summaries,
        )

    def flush(self, timeout: float | None = None) -> str:
        """Sends what was logged; the consistency token of it."""
        return self._outbox.flush(timeout)

    def close(self) -> None:
        self._outbox.flush()
        self._outbox.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


_monitors: dict[tuple[str, str, int, str], Monitor] = {}
_monitors_lock = threading.Lock()


def log_inference(
    model: str,
    version: str | int,
    environment: str,
    features: Any,
    predictions: Any = None,
    latency_ms: Any = None,
    tracking_uri: str | None = None,
) -> None:
    """Monitor(model, version, environment).log(...) with one Monitor per served version in this
    process, flushed at exit: for a model server's request handler."""
    key = ((tracking_uri or get_tracking_uri()).rstrip("/"), model, int(version), environment)
    with _monitors_lock:
        monitor = _monitors.get(key)
        if monitor is None:
            monitor = _monitors[key] = Monitor(model, version, environment, tracking_uri=key[0])
    monitor.log(features, predictions, latency_ms)


@atexit.register
def _flush_monitors() -> None:
    with _monitors_lock:
        for monitor in _monitors.values():
            monitor.close()
        _monitors.clear()
