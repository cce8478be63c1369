"""Load benchmark: a fleet of writer processes (half SDK over Kafka, half through the HTTP gateway),
each logging 1,000-point chunks to its own run as fast as acknowledgements come, for a fixed time.

    .venv/bin/python -m bench.load [--writers 64] [--seconds 60] [--pause 0]

Figures: points acknowledged per second over the writing time, acknowledgement latency p50/p99
(run.flush() → the log acknowledged), and the time until the projector applied everything (then every
run's point count is checked against what its writer says it wrote). Results: bench/results/load.json.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.report import run_and_save
from bench.stack import Stack
from runstream.eventlog.base import Positions, merge_positions, parse_token
from tests.integration.load_writer import run_writers, summarize

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        pipeline = Stack(workdir, stack)
        gateway = pipeline.start_gateway()
        uris = [pipeline.tracking_uri, gateway] * (args.writers // 2)
        started = time.time()
        reports = run_writers(uris, args.seconds, args.pause, {"RUNSTREAM_TOPIC_PREFIX": pipeline.topic_prefix})
        wanted: Positions = {}
        for report in reports:
            merge_positions(wanted, parse_token(report["token"]))
        applied_s = pipeline.wait_applied(wanted, timeout=args.timeout) - started
        rows = pipeline.sql.query("SELECT run_id, count() FROM metrics FINAL GROUP BY run_id").result_rows
        counts: dict[str, int] = {run_id: count for run_id, count in rows}
        lost_or_doubled = sum(abs(counts.get(r["run_id"], 0) - r["points"]) for r in reports)
        return {
            "settings": {**vars(args), "cores": os.cpu_count()},
            **summarize(reports, args.seconds),
            "all_applied_after_s": round(applied_s, 1),
            "points_lost_or_doubled": lost_or_doubled,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=64, help="writer processes (half Kafka, half gateway)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each writer writes")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds each writer sleeps after a chunk")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the projector")
    args = parser.parse_args()
    run_and_save("runstream-bench-load-", RESULTS, lambda workdir: run_bench(args, workdir))


if __name__ == "__main__":
    main()
