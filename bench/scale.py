"""Scale-out benchmark: end-to-end points/s (SDK → Kafka → projector instances → ClickHouse, exact count)
with 1, 2 and 4 projector instances and with 1 vs 2 inserts in flight each; per-core figures of every
stage; bytes on disk per metric point in ClickHouse and in Kafka.

    .venv/bin/python -m bench.scale [--producers 2] [--runs 8] [--points 5000000] ... (--help for all)

One Kafka broker and one ClickHouse server; each configuration gets its own topic, database and
consumer group, and its projectors have joined the group and share every partition before the
producers start. The producers log a noisy decaying loss curve (what training logs) to `--runs` runs
each, spread over the partitions. A stage's per-core figure is the phase's points over the CPU
seconds its processes spent meanwhile (from /proc): how many points one core of that stage handles per
second, the figure docs/capacity.md scales by. Every process shares this machine's cores, so end-to-end
figures stop growing once the cores are saturated (the CPU share column says when).
Results: bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from confluent_kafka.admin import AdminClient

from bench.producers import Job, producers
from bench.report import run_and_save
from bench.stack import Stack
from runstream.eventlog.kafka import events_topic
from runstream.projector.dedup import METRIC_TABLES
from tests.services.ports import free_port
from tests.services.process import cpu_seconds

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
CORES = os.cpu_count() or 1
CONFIGS = [(1, 1), (1, 2), (2, 2), (4, 2)]  # (projector instances, inserts in flight in each)
STAGES = ("producers", "kafka broker", "projectors", "clickhouse server")


class Config:
    """One configuration's topic, database, consumer group and projector processes."""

    def __init__(self, services: Stack, instances: int, in_flight: int, timeout: float) -> None:
        tag = uuid.uuid4().hex[:10]
        self.services, self.instances, self.in_flight = services, instances, in_flight
        self.prefix, self.database, self.group = f"scale{tag}.", f"scale_{tag}", f"scale-{tag}"
        self.env = {
            **services.env,
            "RUNSTREAM_TOPIC_PREFIX": self.prefix,
            "RUNSTREAM_CLICKHOUSE_URL": f"{services.clickhouse.url}/{self.database}",
            "RUNSTREAM_CONSUMER_GROUP": self.group,
            "RUNSTREAM_INSERTS_IN_FLIGHT": str(in_flight),
        }
        self.projectors = [
            services.start_role("projector", "--port", str(free_port()), env=self.env) for _ in range(instances)
        ]
        self.sql: Client = clickhouse_connect.get_client(
            dsn=services.clickhouse.url, database=self.database, compress=False
        )
        self._wait_assigned(timeout)

    def _wait_assigned(self, timeout: float) -> None:
        """Until every instance is a member holding partitions: no rebalance inside the measurement."""
        admin = AdminClient({"bootstrap.servers": self.services.kafka.bootstrap})
        deadline = time.time() + timeout
        while True:
            group = admin.describe_consumer_groups([self.group])[self.group].result(timeout=30)
            held = [m.assignment.topic_partitions for m in group.members]
            if len(held) == self.instances and all(held) and str(group.state) == "ConsumerGroupState.STABLE":
                return
            if time.time() > deadline:
                raise TimeoutError(f"group {self.group}: {len(held)} of {self.instances} members hold partitions")
            time.sleep(0.5)

    def rows(self) -> int:
        """Rows in the active parts of `metrics` (metadata only, no scan)."""
        sql = "SELECT sum(rows) FROM system.parts WHERE database = {db:String} AND table = 'metrics' AND active"
        return int(self.sql.query(sql, parameters={"db": self.database}).result_rows[0][0])

    def pids(self) -> dict[str, list[int]]:
        return {
            "kafka broker": [self.services.kafka.pid or 0],
            "clickhouse server": [self.services.clickhouse.pid or 0],
            "projectors": [p.pid or 0 for p in self.projectors],
        }

    def stop(self) -> None:
        for projector in self.projectors:
            projector.stop()


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {stage: sum(cpu_seconds(pid) for pid in group) for stage, group in pids.items()}


def throughput(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    bootstrap = config.services.kafka.bootstrap
    jobs = [
        Job(
            bootstrap,
            config.prefix,
            tuple(uuid.uuid4().hex for _ in range(args.runs)),
            "arrays",
            args.points,
            args.chunk,
            args.keys,
            curve="loss",
        )
        for _ in range(args.producers)
    ]
    expected = sum(job.expected for job in jobs)
    deadline = time.time() + args.timeout
    with producers(jobs) as (_, reports):
        before = _cpu(config.pids())
        while (seen := config.rows()) < expected:
            if time.time() > deadline:
                raise TimeoutError(f"{seen} of {expected} points after {args.timeout} s")
            time.sleep(0.05)
        visible = time.time()
        cpu = {stage: spent - before[stage] for stage, spent in _cpu(config.pids()).items()}
    rows = config.sql.query("SELECT run_id, count() FROM metrics GROUP BY run_id").result_rows
    counts: dict[str, int] = {run_id: count for run_id, count in rows}
    exact = config.rows() == expected and all(
        sum(counts.get(run_id, 0) for run_id in report["run_ids"]) == report["points"] for report in reports
    )
    start, acked = min(r["start"] for r in reports), max(r["acked"] for r in reports)
    cpu["producers"] = sum(r["cpu_s"] for r in reports)
    seconds = visible - start
    return {
        "projectors": config.instances,
        "inserts_in_flight": config.in_flight,
        "points": expected,
        "exact_count": exact,
        "producer_points_per_s": round(expected / (acked - start)),
        "end_to_end_s": round(seconds, 2),
        "end_to_end_points_per_s": round(expected / seconds),
        "cpu_s": {stage: round(cpu[stage], 2) for stage in STAGES},
        "cpu_share_of_machine": f"{sum(cpu.values()) / (CORES * seconds):.0%}",
        # points one core of the stage handles per second: the phase's points over its CPU seconds
        "points_per_core_s": {stage: round(expected / cpu[stage]) if cpu[stage] else None for stage in STAGES},
    }


def disk(config: Config, kafka_log_dir: Path, points: int) -> dict[str, Any]:
    """Bytes per point once merged (OPTIMIZE FINAL: the state a quiet server settles in), per table and
    in Kafka's log segments of the topic (lz4-compressed batches, one replica)."""
    for table in METRIC_TABLES:
        config.sql.command(f"OPTIMIZE TABLE {table} FINAL")
    sql = (
        "SELECT table, sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts "
        "WHERE database = {db:String} AND active GROUP BY table"
    )
    tables = {t: (int(b), int(u)) for t, b, u in config.sql.query(sql, parameters={"db": config.database}).result_rows}
    topic = events_topic(config.prefix)
    kafka_bytes = sum(
        f.stat().st_size for d in kafka_log_dir.glob(f"{topic}-*") for f in d.iterdir() if f.suffix == ".log"
    )
    metric_bytes = sum(tables.get(t, (0, 0))[0] for t in METRIC_TABLES)
    return {
        "points": points,
        "clickhouse_bytes_per_point": {t: round(tables[t][0] / points, 2) for t in METRIC_TABLES if t in tables},
        "clickhouse_metric_tables_bytes_per_point": round(metric_bytes / points, 2),
        "clickhouse_uncompressed_bytes_per_point": round(tables["metrics"][1] / points, 2),
        "kafka_bytes_per_point": round(kafka_bytes / points, 2),
    }


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    started = time.time()
    phases = []
    with ExitStack() as stack:
        services = Stack(workdir, stack, args.partitions, projector=False)
        for instances, in_flight in CONFIGS:
            config = Config(services, instances, in_flight, args.timeout)
            phase = throughput(config, args)
            phases.append(phase)
            print(
                f"{instances} projector(s) x {in_flight} in flight: {phase['end_to_end_points_per_s']:,} points/s",
                flush=True,
            )
            if (instances, in_flight) == CONFIGS[-1]:
                footprint = disk(config, services.kafka.log_dir, phase["points"])
            config.stop()
    base = phases[0]["end_to_end_points_per_s"]
    one = next(p for p in phases if (p["projectors"], p["inserts_in_flight"]) == (1, 2))["end_to_end_points_per_s"]
    for phase in phases:
        phase["vs_1_projector_1_in_flight"] = round(phase["end_to_end_points_per_s"] / base, 2)
        phase["vs_1_projector_2_in_flight"] = round(phase["end_to_end_points_per_s"] / one, 2)
    settings = {k: v for k, v in vars(args).items() if k != "keep"}
    return {
        "settings": {**settings, "cores": CORES, "seconds": round(time.time() - started)},
        "throughput": phases,
        "disk": footprint,
    }


def table(results: dict[str, Any]) -> str:
    rows = [("configuration", "end to end", "x (1, 1)", "x (1, 2)", "exact", "CPU share", "CPU s per stage")]
    for p in results["throughput"]:
        cpu = ", ".join(f"{stage} {s}" for stage, s in p["cpu_s"].items())
        rows.append(
            (
                f"{p['projectors']} projector(s), {p['inserts_in_flight']} in flight",
                f"{p['end_to_end_points_per_s']:,} points/s",
                str(p["vs_1_projector_1_in_flight"]),
                str(p["vs_1_projector_2_in_flight"]),
                str(p["exact_count"]),
                p["cpu_share_of_machine"],
                cpu,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("")
    lines.append("points per core-second, per stage (each configuration):")
    for p in results["throughput"]:
        per_core = ", ".join(f"{stage} {n:,}" for stage, n in p["points_per_core_s"].items() if n)
        lines.append(f"  {p['projectors']} x {p['inserts_in_flight']}: {per_core}")
    d = results["disk"]
    lines.append("")
    lines.append(
        f"bytes on disk per point ({d['points']:,} points, merged): ClickHouse "
        + ", ".join(f"{t} {b}" for t, b in d["clickhouse_bytes_per_point"].items())
        + f" (all {d['clickhouse_metric_tables_bytes_per_point']}; metrics uncompressed "
        + f"{d['clickhouse_uncompressed_bytes_per_point']}); Kafka {d['kafka_bytes_per_point']} (one replica)"
    )
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in results["settings"].items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--producers", type=int, default=2, help="producer processes")
    parser.add_argument("--runs", type=int, default=8, help="runs each producer logs to (partition keys)")
    parser.add_argument("--points", type=int, default=5_000_000, help="points per producer")
    parser.add_argument("--chunk", type=int, default=10_000, help="points per log_metric_arrays call")
    parser.add_argument("--keys", type=int, default=4, help="metric keys per run (at most 8)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of each configuration's topic")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any one phase")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    run_and_save("runstream-scale-", RESULTS, lambda workdir: run_bench(args, workdir), args.keep, table)


if __name__ == "__main__":
    main()
