"""The projector's memory while it works off a backlog: `--points` metric points (50M by default) wait in
Kafka before a `runstream projector` starts, then it catches up; its resident memory (the process's
VmRSS, sampled every `--sample-s`) must stay bounded and flat however long the backlog is.

    .venv/bin/python -m bench.backlog [--points 50000000] [--producers 2] [--runs 8] [--partitions 8]

One Kafka broker and one ClickHouse server on 127.0.0.1 (bench/stack.py). The producers log the noisy
decaying loss curve of bench/producers.py through the SDK (`log_metric_arrays`, 10,000 points a call)
and are done, acknowledged by Kafka, before the projector starts. What bounds the projector's memory:
each of its lanes holds one batch being filled and one being written, each at most `--batch-points`
points, and librdkafka's prefetch queue is capped (`queued.max.messages.kbytes`, 16 MiB: server/roles.py).
Results: bench/results/backlog.json.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import clickhouse_connect

from bench.producers import Job, producers
from bench.report import run_and_save
from bench.stack import Stack
from runstream.eventlog.kafka import TopicSpec, ensure_topic, events_topic
from runstream.projector.projector import BATCH_POINTS
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "backlog.json"
MIB = 1024**2


def status_bytes(pid: int, field: str) -> int:
    """One memory figure of /proc/PID/status (VmRSS, RssAnon, RssFile, ...), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} for pid {pid}")


def rss_bytes(pid: int) -> int:
    return status_bytes(pid, "VmRSS")


class Sampler:
    """Samples a process's RSS and the points the tables hold, on a thread, until stopped."""

    def __init__(self, pid: int, rows: Any, every_s: float) -> None:
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, rss bytes, points stored)
        self._pid, self._rows, self._every = pid, rows, every_s
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._start, rss_bytes(self._pid), self._rows()))
            self._stop.wait(self._every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        services = Stack(workdir, stack, args.partitions, projector=False)
        per_producer = args.points // args.producers
        jobs = [
            Job(
                services.kafka.bootstrap,
                services.topic_prefix,
                tuple(uuid.uuid4().hex for _ in range(args.runs)),
                "arrays",
                per_producer,
                10_000,
                4,
                curve="loss",
            )
            for _ in range(args.producers)
        ]
        expected = sum(job.expected for job in jobs)
        ensure_topic(services.kafka.bootstrap, events_topic(services.topic_prefix), TopicSpec(args.partitions))
        produced = time.monotonic()
        with producers(jobs, finish=True):
            pass
        produced = time.monotonic() - produced
        print(f"{expected:,} points waiting in Kafka ({produced:.0f} s to log them)", flush=True)

        def rows() -> int:
            # A client per call: the sampler's thread asks too, and a client takes one query at a time.
            sql = "SELECT sum(rows) FROM system.parts WHERE database = {db:String} AND table = 'metrics' AND active"
            client = clickhouse_connect.get_client(dsn=services.clickhouse.url, compress=False)
            return int(client.query(sql, parameters={"db": services.database}).result_rows[0][0] or 0)

        projector = services.start_role(
            "projector", "--port", str(free_port()), "--batch-points", str(args.batch_points)
        )
        assert projector.pid is not None
        sampler = Sampler(projector.pid, rows, args.sample_s)
        deadline = time.monotonic() + args.timeout
        try:
            while (seen := rows()) < expected:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{seen:,} of {expected:,} points after {args.timeout} s")
                time.sleep(0.5)
        finally:
            sampler.stop()
        exact = services.sql.query("SELECT count() FROM metrics").result_rows[0][0] == expected
    samples = sampler.samples
    took = samples[-1][0]
    rss = [r for _, r, _ in samples]
    # Memory by how far the backlog was worked off: flat means no tenth of it holds more than the first.
    tenths = []
    for tenth in range(1, 11):
        within = [r for _, r, stored in samples if (tenth - 1) * expected / 10 <= stored < tenth * expected / 10]
        tenths.append(round(max(within) / MIB) if within else None)
    return {
        "settings": {**vars(args), "results": str(args.results), "expected_points": expected},
        "log_seconds": round(produced, 1),
        "catch_up_seconds": round(took, 1),
        "catch_up_points_per_s": round(expected / took),
        "exact_count": exact,
        "rss_mib": {
            "peak": round(max(rss) / MIB),
            "median": round(statistics.median(rss) / MIB),
            "peak_per_tenth_of_backlog": tenths,
        },
        "samples": [(round(t, 1), round(r / MIB), stored) for t, r, stored in samples],
    }


def summary(results: dict[str, Any]) -> str:
    rss = results["rss_mib"]
    return "\n".join(
        [
            f"backlog {results['settings']['expected_points']:,} points: caught up in {results['catch_up_seconds']} s "
            f"({results['catch_up_points_per_s']:,} points/s), exact count {results['exact_count']}",
            f"projector RSS: peak {rss['peak']} MiB, median {rss['median']} MiB",
            f"peak RSS per tenth of the backlog worked off (MiB): {rss['peak_per_tenth_of_backlog']}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=50_000_000, help="points waiting in Kafka")
    parser.add_argument("--producers", type=int, default=2, help="producer processes")
    parser.add_argument("--runs", type=int, default=8, help="runs each producer logs to")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the topic")
    parser.add_argument("--batch-points", type=int, default=BATCH_POINTS, help="the projector's --batch-points")
    parser.add_argument("--sample-s", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds the projector may take")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results are written")
    args = parser.parse_args()
    run_and_save("runstream-backlog-", args.results, lambda workdir: run_bench(args, workdir), args.keep, summary)


if __name__ == "__main__":
    main()
