"""Drift alerts: a production window (InferenceLogged) whose drift from the model's reference crosses
a threshold makes one `model_version.drift_detected` webhook event, for the first window above it
after one at or below it (or with none before): once per crossing, and the same again on any replay,
since it is read from the windows themselves.

Thresholds are model tags, settable from MLflow's client: `runstream.drift.<ks|psi|chi2>` = a number
(a figure above it alerts), `runstream.drift.reference` = the reference (default profile:training, see
store/drift.py)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from clickhouse_connect.driver.client import Client

from runstream.store import registry as rq
from runstream.store.drift import DEFAULT_REFERENCE, BadReference, Served, drift, resolve_reference
from runstream.store.served_windows import previous_window

TAG_PREFIX = "runstream.drift."
STATS = ("ks", "psi", "chi2")
EVENT = "model_version.drift_detected"


def window_id(r: dict[str, Any]) -> bytes:
    """16 bytes naming a served window (model, version, environment, start)."""
    named = "\0".join(str(r[k]) for k in ("model_name", "version", "environment", "window_start"))
    return hashlib.sha256(named.encode()).digest()[:16]


def thresholds(tags: dict[str, str]) -> dict[str, float]:
    found = {}
    for stat in STATS:
        try:
            found[stat] = float(tags[TAG_PREFIX + stat])
        except (KeyError, ValueError):
            continue
    return found


def drift_payload(client: Client, r: dict[str, Any]) -> dict[str, Any] | None:
    """The alert of this window, if it crossed a threshold of its model."""
    tags = rq.live_model_tags(client, r["model_name"], TAG_PREFIX)
    limits = thresholds(tags)
    if not limits:
        return None
    start = r["window_start"]
    now = Served(r["model_name"], r["version"], r["environment"], start, start + 1)
    spec = tags.get(TAG_PREFIX + "reference", DEFAULT_REFERENCE)
    try:
        reference = resolve_reference(client, now, spec)
    except BadReference:
        return None  # nothing to compare with: no alert (the monitoring view says why)
    figures = drift(client, now, reference).get(start, {})
    previous = previous_window(client, now)
    before: dict[str, dict[str, Any]] = {}
    if previous is not None:
        before = drift(client, Served(now.model, now.version, now.environment, previous, previous + 1), reference).get(
            previous, {}
        )
    crossed = [
        {"feature": feature, "statistic": stat, "value": figures[feature][stat], "threshold": limit}
        for feature in sorted(figures)
        for stat, limit in limits.items()
        if figures[feature].get(stat, -math.inf) > limit >= before.get(feature, {}).get(stat, -math.inf)
    ]
    if not crossed:
        return None
    return {
        "name": r["model_name"],
        "version": str(r["version"]),
        "environment": r["environment"],
        "window_start": start,
        "window_end": r["window_end"],
        "reference": spec,
        "crossed": crossed,
    }
