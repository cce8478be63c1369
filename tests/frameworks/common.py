"""Shared by the framework scripts (run by the frameworks' venv, `python SCRIPT TRACKING_URI`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import runstream

URI = sys.argv[1]
SYSTEM = {"log_system_metrics": True, "system_metrics_interval": 0.05}  # several samples in a fit of a second
FRAMEWORKS = ("torch", "lightning", "transformers", "keras")


def report(run: runstream.Run, **seen: Any) -> None:
    """Prints the run and what the framework itself reported, for the test to compare with the reads.
    The integration ended the run; ending again returns its consistency token."""
    print(json.dumps({"run_id": run.run_id, "token": run.end(), **seen}))
