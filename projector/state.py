"""Rows of the current-state tables (migrations/002), derived from a batch's run, param and tag event
rows: each event becomes a tuple that the table's min/max fold keeps only if it is the one that
counts (the first creation, the latest update of each field, the first param value, the latest tag)."""

from __future__ import annotations

from typing import Any

Row = list[Any]

# Sort positions for tuples of events that do not set a field: they never win a min / a max.
NEVER_FIRST = 2**63 - 1
NEVER_LATEST = -(2**63)
_UNSET = (NEVER_LATEST, 0, None)


def _run_state(row: Row) -> Row:
    run_id, t, s, _, kind, experiment_id, name, user_id, start_time, parent, artifact_uri, status, end = row
    updated = kind == "updated"

    def latest(value: Any) -> tuple[int, int, Any]:
        return (t, s, value) if updated and value is not None else _UNSET

    is_created = kind == "created"
    created = (
        (t, s, experiment_id, name, user_id, parent, artifact_uri)
        if is_created
        else (NEVER_FIRST, 0, "", None, None, None, None)
    )
    lifecycle = (t, s, int(kind == "deleted")) if kind in ("deleted", "restored") else (NEVER_LATEST, 0, 0)
    return [run_id, created, start_time if is_created else None, latest(name), latest(status), latest(end), lifecycle]


def state_rows(events: dict[str, list[Row]]) -> dict[str, list[Row]]:
    """State rows per state table, from event rows laid out as store.tables.EVENT_TABLES."""
    return {
        "run_state": [_run_state(r) for r in events["run_events"]],
        "param_state": [[key, run_id, (t, s, value)] for run_id, key, value, t, s, _ in events["run_params"]],
        "tag_state": [
            [key, run_id, (t, s, deleted, value)] for run_id, key, value, deleted, t, s, _ in events["run_tags"]
        ],
    }
