"""Replay vs live ingest, in one run on the same services: SDK producer processes log metric points
into Kafka while a `runstream projector` writes them into ClickHouse (live: from the first point
logged until the last is in the table); then `runstream replay` rebuilds every table from that log into
a fresh database and swaps it in, the live projector pausing for the handover (replay: from its start
until the swap). Both figures are points over wall seconds, on this machine's 2 cores.

    .venv/bin/python -m bench.replay [--points N] [--producers N]
"""

from __future__ import annotations

import argparse
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.producers import Job, producers
from bench.report import run_and_save
from bench.stack import Stack
from runstream.base.clickhouse import ClickHouse
from runstream.eventlog.kafka import events_topic
from runstream.eventlog.ranges import KafkaRanges
from runstream.projector.replay import replay

RESULTS = Path(__file__).resolve().parent / "results" / "replay.json"


def _points(stack: Stack) -> int:
    return int(stack.sql.query("SELECT count() FROM metrics").result_rows[0][0])


def _merges_settled(stack: Stack, timeout_s: float = 300.0) -> float:
    """Waits for ClickHouse's background merges of what live ingest wrote, which would otherwise take
    the replay's CPU (both are bound by ClickHouse's inserts on 2 cores); returns the seconds waited."""
    started = time.time()
    while stack.sql.query("SELECT count() FROM system.merges").result_rows[0][0] and time.time() - started < timeout_s:
        time.sleep(0.2)
    return time.time() - started


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with ExitStack() as exits:
        stack = Stack(workdir, exits, args.partitions)
        bootstrap = stack.kafka.bootstrap
        jobs = [
            Job(
                bootstrap,
                stack.topic_prefix,
                tuple(uuid.uuid4().hex for _ in range(args.runs)),
                "arrays",
                args.points // args.producers,
                args.chunk,
                args.keys,
                curve="loss",
            )
            for _ in range(args.producers)
        ]
        expected = sum(job.expected for job in jobs)
        with producers(jobs) as (_, reports):
            deadline = time.time() + args.timeout
            while _points(stack) < expected:
                if time.time() > deadline:
                    raise TimeoutError(f"{_points(stack)} of {expected} points after {args.timeout} s")
                time.sleep(0.05)
            visible = time.time()
        live_s = visible - min(r["start"] for r in reports)
        print(f"live ingest: {expected:,} points in {live_s:.1f} s", flush=True)

        settled = _merges_settled(stack)
        print(f"ClickHouse's merges of the live parts done after {settled:.1f} s", flush=True)
        live = ClickHouse(stack.env["RUNSTREAM_CLICKHOUSE_URL"])
        ranges = KafkaRanges(bootstrap, events_topic(stack.topic_prefix))
        started = time.time()
        report = replay(ranges, live, stack.consumer_group)
        replay_s = time.time() - started
        print(f"replay: {report.points:,} points in {replay_s:.1f} s", flush=True)
        after = int(stack.sql.query("SELECT count() FROM metrics FINAL").result_rows[0][0])
    return {
        "settings": {k: v for k, v in vars(args).items() if k != "keep"},
        "points": expected,
        "events": report.messages,
        "live_ingest_s": round(live_s, 2),
        "live_ingest_points_per_s": round(expected / live_s),
        "replay_s": round(replay_s, 2),
        "replay_points_per_s": round(report.points / replay_s),
        "replay_vs_live": round(live_s / replay_s, 2),
        "replay_projecting_s": round(report.projecting_s, 2),
        "replay_projecting_points_per_s": round(report.points / report.projecting_s),
        "replay_projecting_vs_live": round(live_s / report.projecting_s, 2),
        "swapped": report.swapped,
        "points_after_swap": after,
        "row_counts_live_vs_replayed": {t: list(c) for t, c in sorted(report.counts.items())},
    }


def summary(results: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"{results['points']:,} points ({results['events']:,} events), same Kafka and ClickHouse:",
            f"  live ingest (SDK → Kafka → projector → ClickHouse): {results['live_ingest_points_per_s']:,} points/s "
            f"({results['live_ingest_s']} s)",
            f"  runstream replay (log → fresh tables → swap):        {results['replay_points_per_s']:,} points/s "
            f"({results['replay_s']} s)",
            f"    of which projecting (the rest: handover, row counts, swap): "
            f"{results['replay_projecting_points_per_s']:,} points/s ({results['replay_projecting_s']} s)",
            f"  replay / live: {results['replay_vs_live']}x (projecting: {results['replay_projecting_vs_live']}x); "
            f"swapped: {results['swapped']}; "
            f"points after the swap: {results['points_after_swap']:,}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--producers", type=int, default=2, help="producer processes")
    parser.add_argument("--runs", type=int, default=8, help="runs each producer logs to")
    parser.add_argument("--points", type=int, default=10_000_000, help="points in all")
    parser.add_argument("--chunk", type=int, default=10_000, help="points per log_metric_arrays call")
    parser.add_argument("--keys", type=int, default=4, help="metric keys per run")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the topic")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for live ingest")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    run_and_save("runstream-replay-", RESULTS, lambda workdir: run_bench(args, workdir), args.keep, summary)


if __name__ == "__main__":
    main()
