"""Hyperparameters as runstream params: nested mappings flattened to `a/b` keys, values as strings."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any

# MLflow's limit on a param value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH): longer values are cut,
# so a run logged here stays readable by the MLflow client and the MLflow REST API.
MAX_PARAM_VALUE = 6000


def flatten_params(params: Mapping[str, Any] | Namespace, prefix: str = "") -> dict[str, str]:
    """Nested dicts and Namespaces become `outer/inner` keys; None values are skipped (no value to show)."""
    items = vars(params) if isinstance(params, Namespace) else params
    flat: dict[str, str] = {}
    for key, value in items.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping | Namespace):
            flat.update(flatten_params(value, f"{name}/"))
        elif value is not None:
            flat[name] = str(value)[:MAX_PARAM_VALUE]
    return flat
