"""Many concurrent writer processes, each logging to its own run for a fixed time and timing every
acknowledgement. The child: `python -m tests.integration.load_writer SECONDS PAUSE` (tracking URI
and topic prefix from the environment); `run_writers` starts a fleet and collects what each wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import runstream

REPO = Path(__file__).resolve().parents[2]
CHUNK = 1000  # points per flush: one acknowledgement timed per chunk


def main() -> None:
    seconds, pause = float(sys.argv[1]), float(sys.argv[2])
    run = runstream.start_run(experiment="load")
    latencies, written, deadline = [], 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        steps = np.arange(written, written + CHUNK)
        run.log_metric_arrays("x", steps.astype(np.float64), steps)
        started = time.monotonic()
        run.flush()  # returns once the log acknowledged every point so far
        latencies.append(time.monotonic() - started)
        written += CHUNK
        time.sleep(pause)
    token = run.end()
    print(json.dumps({"run_id": run.run_id, "points": written, "token": token, "ack_s": latencies}), flush=True)


def run_writers(uris: list[str], seconds: float, pause: float, env: dict[str, str]) -> list[dict[str, Any]]:
    """One writer process per tracking URI, all at once, each pausing `pause` s after a chunk; their
    reports (points, token, ack latencies)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.load_writer", str(seconds), str(pause)],
            cwd=REPO,
            env={**os.environ, **env, "RUNSTREAM_TRACKING_URI": uri},
            stdout=subprocess.PIPE,
            text=True,
        )
        for uri in uris
    ]
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"a writer failed with exit code {proc.returncode}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def summarize(reports: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    """Throughput over the writing time and the acknowledgement latency distribution."""
    acks = np.concatenate([r["ack_s"] for r in reports])
    points = sum(r["points"] for r in reports)
    return {
        "writers": len(reports),
        "points": points,
        "points_per_s": round(points / seconds),
        "ack_p50_ms": round(float(np.percentile(acks, 50)) * 1000, 1),
        "ack_p99_ms": round(float(np.percentile(acks, 99)) * 1000, 1),
    }


if __name__ == "__main__":
    main()
