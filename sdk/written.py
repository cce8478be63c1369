"""What this process has written, per tracking URI: a read through the same server without a token
waits for it, so `client.get_run(run.run_id)` right after `run.end()` sees the run (read-your-writes
within a process, as the MLflow path gives the official client)."""

from __future__ import annotations

import threading

from runstream.eventlog.base import Positions, format_token, merge_positions, parse_token

_written: dict[str, Positions] = {}
_lock = threading.Lock()


def record(tracking_uri: str, token: str) -> None:
    with _lock:
        merge_positions(_written.setdefault(tracking_uri.rstrip("/"), {}), parse_token(token))


def token_for(tracking_uri: str) -> str | None:
    """The positions this process's writes to `tracking_uri` reached, or None if it wrote nothing there."""
    with _lock:
        positions = _written.get(tracking_uri.rstrip("/"))
        return format_token(positions) if positions else None
