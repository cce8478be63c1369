"""Ingest benchmark on real services: SDK → Kafka → `runstream projector` → ClickHouse server.

    .venv/bin/python -m bench.ingest [--producers 2] [--points 5000000] [--no-profile] ... (--help for all)

Phases: (1) throughput of P producer processes through the SDK's columnar path
(`run.log_metric_arrays` in chunks) and its per-step path (`run.log_metrics({...}, step=...)`),
measured until Kafka acknowledged (producer side) and until ClickHouse holds every point (end to end);
(2) event → queryable latency of a probe on an idle pipeline and under a paced background load;
(3) the columnar phase again with py-spy on the projector and on one producer (skipped without py-spy,
which is not a project dependency: `.venv/bin/pip install py-spy` to get it). CPU seconds of every process
are read from /proc around each phase, and ClickHouse's own counters (system.events) give the server's
insert and merge time. The broker, the server, the projector and the producers share this machine's cores.
Results go to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

import runstream
from bench.producers import Job, producers
from bench.report import run_and_save
from bench.stack import Stack
from runstream.eventlog.base import parse_token
from runstream.store.applied import applied_positions, caught_up
from runstream.store.queries import metric_history
from tests.services.process import cpu_seconds

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
CORES = os.cpu_count() or 1
SERVER_EVENTS = [  # ClickHouse's own counters (system.events), as deltas over a phase
    "InsertQuery",
    "InsertedRows",
    "InsertQueryTimeMicroseconds",
    "SelectQuery",
    "SelectQueryTimeMicroseconds",
    "MergedRows",
    "MergeTotalMilliseconds",
    "UserTimeMicroseconds",
    "SystemTimeMicroseconds",
]
# Where a projector sample is, judged by the first pattern found in its stack (most specific first).
PROJECTOR_COSTS = [
    ("insert metrics: waiting for the server", r"insert_arrow .*(recv|readinto|_read_status|getresponse|poll)"),
    ("insert metrics: sending the body", r"insert_arrow .*(send|write)"),
    ("insert metrics: client side (Arrow IPC etc.)", r"insert_arrow "),
    ("insert other tables + projector_progress", r"_write .*insert "),
    ("Arrow table build (Batch.metric_table)", r"metric_table "),
    ("Avro decode (schemas.codec.decode)", r"decode \(schemas"),
    ("validation (schemas.validation)", r"validate "),
    ("Kafka offset commit (synchronous)", r"commit \(ingest"),
    ("Kafka consume (poll, incl. waiting)", r"poll \(ingest"),
]
PRODUCER_COSTS = [
    ("Avro encode of the batch (fastavro, bytes copies)", r"encode \(schemas"),
    ("packing columns (tobytes)", r"metric_batch_fields "),
    ("Kafka produce() calls (KafkaLog.append)", r"append \(ingest"),
    ("buffer append (log_metric_arrays / log_metrics)", r"add_arrays |add \(ingest|log_metric"),
    ("making the arrays / dicts (the caller)", r"produce \(bench"),
]


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(seconds, q)) * 1000, 1) for q in (50, 99)}


def summarize_profile(path: Path, rules: list[tuple[str, str]]) -> dict[str, str]:
    """py-spy raw output (`stack count` lines) → share of samples per cost, largest first."""
    costs: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        label = next((name for name, pattern in rules if re.search(pattern, stack)), None)
        costs[label or "other: " + stack.rsplit(";", 1)[-1].split(" (")[0]] += int(count)
    total = sum(costs.values()) or 1
    return {name: f"{n / total:.0%}" for name, n in costs.most_common(12)}


class Bench:
    """The services and one projector, each registered on `stack` to be stopped by PID as soon as started."""

    def __init__(self, args: argparse.Namespace, workdir: Path, stack: ExitStack) -> None:
        self.args = args
        self.workdir = workdir
        services = Stack(workdir, stack, args.partitions)
        self.kafka, self.clickhouse, self.sql = services.kafka, services.clickhouse, services.sql
        self.prefix, self.database = services.topic_prefix, services.database
        os.environ["RUNSTREAM_TOPIC_PREFIX"] = self.prefix  # for the probe run, which runs in this process
        self.group = services.consumer_group
        assert services.projector is not None and services.projector.pid is not None  # Stack waited until it consumes
        self.projector_pid: int = services.projector.pid
        self.pids = services.pids()

    def rows(self) -> int:
        """Rows in the active parts of `metrics`: what queries see, read from metadata (no table scan)."""
        sql = "SELECT sum(rows) FROM system.parts WHERE database = {db:String} AND table = 'metrics' AND active"
        return int(self.sql.query(sql, parameters={"db": self.database}).result_rows[0][0])

    def wait_for(self, rows: int) -> float:
        """Polls until `metrics` holds `rows` rows; returns the time it saw them."""
        deadline = time.time() + self.args.timeout
        while (seen := self.rows()) < rows:
            if time.time() > deadline:
                raise TimeoutError(f"{seen} of {rows} rows after {self.args.timeout} s")
            time.sleep(0.05)
        return time.time()

    def counts(self, run_ids: list[str]) -> dict[str, int]:
        sql = "SELECT run_id, count() FROM metrics WHERE run_id IN {ids:Array(String)} GROUP BY run_id"
        return {r[0]: r[1] for r in self.sql.query(sql, parameters={"ids": run_ids}).result_rows}

    def server_events(self) -> Counter[str]:
        return Counter({k: int(v) for k, v in self.sql.query("SELECT event, value FROM system.events").result_rows})

    def job(self, mode: str, points: int, rate: float = 0.0) -> Job:
        a = self.args
        return Job(self.kafka.bootstrap, self.prefix, (uuid.uuid4().hex,), mode, points, a.chunk, a.keys, rate)

    def spy(self, pid: int, name: str, idle: bool) -> tuple[subprocess.Popen[bytes], Path]:
        out = self.workdir / f"{name}.pyspy.txt"
        cmd = [PY_SPY, "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "--nonblocking"]
        cmd += ["--output", str(out), *(["--idle"] if idle else [])]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out

    def throughput(self, mode: str, points: int, profile: bool = False) -> dict[str, Any]:
        """P producers x `points`: producer side until Kafka acked, end to end until ClickHouse holds all."""
        jobs = [self.job(mode, points) for _ in range(self.args.producers)]
        expected = sum(j.expected for j in jobs)
        before, events = self.rows(), self.server_events()
        spies: list[tuple[subprocess.Popen[bytes], Path]] = []
        with producers(jobs) as (pids, reports):
            cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
            if profile:
                spies = [self.spy(self.projector_pid, "projector", idle=True), self.spy(pids[0], "producer", False)]
            visible = self.wait_for(before + expected)
            cpu = {name: cpu_seconds(pid) - cpu[name] for name, pid in self.pids.items()}
        events = self.server_events() - events
        counts = self.counts([run_id for j in jobs for run_id in j.run_ids])
        exact = self.rows() - before == expected and all(
            sum(counts.get(run_id, 0) for run_id in r["run_ids"]) == r["points"] for r in reports
        )
        start, acked = min(r["start"] for r in reports), max(r["acked"] for r in reports)
        cpu["producers"] = sum(r["cpu_s"] for r in reports)
        result: dict[str, Any] = {
            "mode": mode,
            "producers": len(jobs),
            "points": expected,
            "exact_count": exact,
            "producer_s": round(acked - start, 2),
            "end_to_end_s": round(visible - start, 2),
            "producer_points_per_s": round(expected / (acked - start)),
            "end_to_end_points_per_s": round(expected / (visible - start)),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "cpu_share_of_machine": {k: f"{v / (CORES * (visible - start)):.0%}" for k, v in cpu.items()},
            "server_events": {k: events[k] for k in SERVER_EVENTS if k in events},
        }
        if spies:
            for spy, _ in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
                spy.wait(timeout=60)
            result["projector_wall_time"] = summarize_profile(spies[0][1], PROJECTOR_COSTS)
            result["producer_python_cpu"] = summarize_profile(spies[1][1], PRODUCER_COSTS)
        return result

    def shows(self, run_id: str, step: int) -> bool:
        """Whether the read API's history query returns the probe point of this step."""
        return step in metric_history(self.sql, run_id, "probe", step + 1, None).steps

    def latency(self, samples: int, load_rate: float) -> dict[str, Any]:
        """A probe logs one point and flushes (Kafka acked), then polls until the read query shows the point
        and until projector_progress covers the flush's token (what a read-your-writes read waits for);
        meanwhile P producers log columnar batches at `load_rate` points/s in total (if not 0)."""
        before, rate = self.rows(), load_rate / self.args.producers
        jobs = [self.job("arrays", 10**12, rate) for _ in range(self.args.producers)] if load_rate else []
        group = self.group
        times: dict[str, list[float]] = {"acked": [], "queryable": [], "token_applied": []}
        run = runstream.start_run(experiment="bench", tracking_uri=f"kafka://{self.kafka.bootstrap}")
        run.flush()
        with producers(jobs) as (_, reports):
            for i in range(samples + 1):  # the first one warms up
                t0 = time.perf_counter()
                run.log_metrics({"probe": float(i)}, step=i)
                wanted = parse_token(run.flush())
                seen = {"acked": time.perf_counter()}
                while len(seen) < 3:
                    if "queryable" not in seen and self.shows(run.run_id, i):
                        seen["queryable"] = time.perf_counter()
                    if "token_applied" not in seen and caught_up(applied_positions(self.sql, group), wanted):
                        seen["token_applied"] = time.perf_counter()
                    if time.perf_counter() - t0 > self.args.timeout:
                        raise TimeoutError(f"probe point {i} not visible after {self.args.timeout} s")
                    time.sleep(0.005)  # the polls are queries too: keep them from loading the server
                for name, t in seen.items():
                    times[name] += [t - t0] if i else []
                time.sleep(0.05 + 0.1 * np.random.random())  # do not beat in time with the projector
        run.end()
        self.wait_for(before + samples + 1 + sum(r["points"] for r in reports))  # drained: the next phase starts clean
        achieved = sum(r["points"] / (r["acked"] - r["start"]) for r in reports)
        return {
            "background_points_per_s": round(achieved),
            "samples": samples,
            **{f"{name}_ms": percentiles(values) for name, values in times.items()},
        }


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    started = time.time()
    with ExitStack() as stack:  # stops what was started, last first, also on errors
        bench = Bench(args, workdir, stack)
        bench.throughput("arrays", args.chunk)  # warm-up: topic, tables and the group's assignment in place
        arrays = bench.throughput("arrays", args.points)
        steps = bench.throughput("steps", args.step_points)
        idle = bench.latency(args.samples, 0)
        loaded = bench.latency(args.samples, args.load * arrays["end_to_end_points_per_s"])
        profiled = bench.throughput("arrays", args.points, profile=True) if args.profile else None
    settings = {k: v for k, v in vars(args).items() if k not in ("keep", "results")}
    return {
        "settings": {**settings, "cores": CORES, "seconds": round(time.time() - started)},
        "throughput_arrays": arrays,
        "throughput_steps": steps,
        "latency_idle": idle,
        "latency_loaded": loaded,
        "profiled_arrays": profiled,
    }


def table(results: dict[str, Any]) -> str:
    rows = [("figure", "value")]
    for name in ("throughput_arrays", "throughput_steps"):
        t = results[name]
        what = f"{t['mode']}, {t['producers']} producers, {t['points']:,} points"
        rows += [
            (f"{what}: producer side (Kafka acked)", f"{t['producer_points_per_s']:,} points/s"),
            (f"{what}: end to end (queryable)", f"{t['end_to_end_points_per_s']:,} points/s"),
            (f"{what}: exact count in ClickHouse", str(t["exact_count"])),
        ]
    for name in ("latency_idle", "latency_loaded"):
        lat = results[name]
        load = f"background {lat['background_points_per_s']:,} points/s" if lat["background_points_per_s"] else "idle"
        rows += [
            (f"probe, {load}: flush → Kafka acked p50/p99", "{p50} / {p99} ms".format(**lat["acked_ms"])),
            (f"probe, {load}: log → queryable p50/p99", "{p50} / {p99} ms".format(**lat["queryable_ms"])),
            (f"probe, {load}: log → token applied p50/p99", "{p50} / {p99} ms".format(**lat["token_applied_ms"])),
        ]
    arrays = results["throughput_arrays"]
    cpu = ", ".join(f"{k} {v}" for k, v in arrays["cpu_share_of_machine"].items())
    rows.append((f"arrays e2e: CPU share of the {CORES} cores", cpu))
    ev = arrays["server_events"]
    rows.append(
        (
            "arrays e2e: ClickHouse server",
            f"{ev.get('InsertQuery', 0)} inserts taking {ev.get('InsertQueryTimeMicroseconds', 0) / 1e6:.1f} s "
            f"in a {arrays['end_to_end_s']} s window; merges {ev.get('MergeTotalMilliseconds', 0) / 1e3:.1f} s "
            f"({ev.get('MergedRows', 0):,} rows)",
        )
    )
    profiled = results.get("profiled_arrays")
    if profiled:
        rows += [(f"projector wall time: {k}", v) for k, v in profiled["projector_wall_time"].items()]
        rows += [(f"producer Python CPU: {k}", v) for k, v in profiled["producer_python_cpu"].items()]
    rows.append(("settings", ", ".join(f"{k}={v}" for k, v in results["settings"].items())))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--producers", type=int, default=2, help="producer processes")
    parser.add_argument("--points", type=int, default=5_000_000, help="points per producer, columnar path")
    parser.add_argument("--chunk", type=int, default=10_000, help="points per log_metric_arrays call")
    parser.add_argument("--step-points", type=int, default=1_000_000, help="points per producer, per-step path")
    parser.add_argument("--keys", type=int, default=4, help="metric keys per run (at most 8)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the bench topic")
    parser.add_argument("--samples", type=int, default=60, help="latency probes per latency phase")
    parser.add_argument("--load", type=float, default=0.3, help="background load, fraction of arrays e2e rate")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True, help="py-spy phase")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for any one phase")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, py-spy output)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results are written")
    args = parser.parse_args()
    if args.profile and not Path(PY_SPY).exists():
        print("no py-spy on PATH (pip install py-spy): skipping the profile phase")
        args.profile = False
    run_and_save("runstream-bench-", args.results, lambda workdir: run_bench(args, workdir), args.keep, table)


if __name__ == "__main__":
    main()
