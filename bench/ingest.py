"""Ingest benchmark on real services: SDK → Kafka → `runstream projector` → ClickHouse server.

    .venv/bin/python -m bench.ingest [--producers 2] [--points 4000000] [--profile] ...

Phases: (1) throughput of P producer processes through the SDK's columnar path
(`run.log_metric_arrays`) and its per-step path (`run.log_metrics({...}, step=...)`), measured until
Kafka acknowledged (producer side) and until ClickHouse holds every point (end to end);
(2) event → queryable latency of a probe on an idle pipeline and under a paced background load;
(3) with --profile, the columnar phase again with py-spy on the projector and one producer.
CPU seconds of every process are read from /proc around each phase. Results: bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import clickhouse_connect
import numpy as np
from clickhouse_connect.driver.client import Client

import runstream
from api.queries import metric_history
from tests.integration.roles import Role
from tests.services.clickhouse_server import start_clickhouse
from tests.services.kafka_broker import start_kafka

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEYS = ["loss", "acc", "lr", "grad_norm", "throughput", "mem", "val_loss", "val_acc"]
SERVER_EVENTS = [
    "InsertQuery",
    "InsertedRows",
    "InsertedBytes",
    "InsertQueryTimeMicroseconds",
    "SelectQuery",
    "SelectQueryTimeMicroseconds",
    "Merge",
    "MergedRows",
    "MergeTotalMilliseconds",
    "UserTimeMicroseconds",
    "SystemTimeMicroseconds",
]


@dataclass(frozen=True)
class Producer:
    """What one producer process does (picklable: it crosses into a spawned process)."""

    bootstrap: str
    topic_prefix: str
    run_id: str
    mode: str  # "arrays": log_metric_arrays in chunks; "steps": log_metrics({...}, step=...) per step
    points: int
    chunk: int
    keys: int
    rate: float = 0.0  # points/s to pace at; 0 = as fast as possible


def produce(job: Producer, ready: Barrier, stop: Event, results: mp.Queue[dict[str, Any]]) -> None:
    os.environ["RUNSTREAM_TOPIC_PREFIX"] = job.topic_prefix
    keys = KEYS[: job.keys]
    run = runstream.start_run(experiment="bench", run_id=job.run_id, tracking_uri=f"kafka://{job.bootstrap}")
    run.flush()  # connected, topic known: the clock starts after this
    ready.wait()
    start, cpu = time.time(), time.process_time()
    sent = 0
    if job.mode == "arrays":
        base = np.linspace(0.0, 1.0, job.chunk)
        for i, first in enumerate(range(0, job.points, job.chunk)):
            n = min(job.chunk, job.points - first)
            run.log_metric_arrays(keys[i % len(keys)], base[:n] + first, np.arange(first, first + n))
            sent += n
            if job.rate:
                time.sleep(max(0.0, start + sent / job.rate - time.time()))
            if stop.is_set():
                break
    else:
        for step in range(job.points // len(keys)):
            run.log_metrics({key: step * 0.001 + j for j, key in enumerate(keys)}, step=step)
        sent = job.points // len(keys) * len(keys)
    run.flush()
    acked, cpu = time.time(), time.process_time() - cpu
    run.end()
    results.put({"run_id": job.run_id, "points": sent, "start": start, "acked": acked, "cpu_s": cpu})


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def server_events(client: Client) -> Counter[str]:
    return Counter({name: int(value) for name, value in client.query("SELECT event, value FROM system.events").result_rows})


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        tag = uuid.uuid4().hex[:10]
        self.kafka = start_kafka(workdir / "kafka")
        self.clickhouse = start_clickhouse(workdir / "clickhouse")
        self.database = f"bench_{tag}"
        self.env = {
            "RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "RUNSTREAM_TOPIC_PREFIX": f"bench{tag}.",
            "RUNSTREAM_CLICKHOUSE_URL": f"{self.clickhouse.url}/{self.database}",
            "RUNSTREAM_CONSUMER_GROUP": f"bench-{tag}",
            "RUNSTREAM_KAFKA_PARTITIONS": str(args.partitions),
        }
        os.environ["RUNSTREAM_TOPIC_PREFIX"] = self.env["RUNSTREAM_TOPIC_PREFIX"]  # for the probe run in here
        self.projector = Role(workdir, "projector", env=self.env)
        self.sql = clickhouse_connect.get_client(dsn=self.clickhouse.url, database=self.database, compress=False)
        self.pids = {
            "kafka broker": self.kafka.pid,
            "clickhouse server": self.clickhouse.pid,
            "projector": self.projector.proc.pid if self.projector.proc else None,
        }

    def close(self) -> None:
        self.projector.stop()
        self.clickhouse.stop()
        self.kafka.stop()

    def count(self) -> int:
        return int(self.sql.command("SELECT count() FROM metrics"))  # type: ignore[arg-type]

    def job(self, mode: str, points: int, rate: float = 0.0) -> Producer:
        a = self.args
        return Producer(self.kafka.bootstrap, self.env["RUNSTREAM_TOPIC_PREFIX"], uuid.uuid4().hex, mode, points, a.chunk, a.keys, rate)

    @contextmanager
    def producers(self, jobs: list[Producer]) -> Iterator[tuple[list[mp.Process], Event, mp.Queue[dict[str, Any]]]]:
        """Starts one process per job; yields once all are connected and about to start."""
        ctx = mp.get_context("spawn")
        ready, stop, results = ctx.Barrier(len(jobs) + 1), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=produce, args=(job, ready, stop, results)) for job in jobs]
        for p in procs:
            p.start()
        try:
            ready.wait(timeout=120)
            yield procs, stop, results
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=120)
                if p.is_alive():
                    p.kill()

    def throughput(self, mode: str, points: int, profile: bool = False) -> dict[str, Any]:
        """P producers × `points`; producer side until acked, end to end until every point is in ClickHouse."""
        jobs = [self.job(mode, points) for _ in range(self.args.producers)]
        expected = sum(j.points // j.keys * j.keys if mode == "steps" else j.points for j in jobs)
        before = self.count()
        events = server_events(self.sql)
        spies: list[subprocess.Popen[bytes]] = []
        with self.producers(jobs) as (procs, _stop, results):
            cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
            if profile:
                spies = [self.spy(self.pids["projector"], "projector", idle=True), self.spy(procs[0].pid, "producer")]
            t0 = time.time()
            while self.count() < before + expected:
                if time.time() - t0 > self.args.timeout:
                    raise TimeoutError(f"{self.count() - before} of {expected} points after {self.args.timeout} s")
                time.sleep(0.02)
            visible = time.time()
            cpu = {name: cpu_seconds(pid) - cpu[name] for name, pid in self.pids.items()}
            reports = [results.get(timeout=120) for _ in jobs]
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        events = server_events(self.sql) - events
        counts = dict(
            self.sql.query(
                "SELECT run_id, count() FROM metrics WHERE run_id IN {ids:Array(String)} GROUP BY run_id",
                parameters={"ids": [j.run_id for j in jobs]},
            ).result_rows
        )
        exact = all(counts.get(r["run_id"]) == r["points"] for r in reports) and self.count() - before == expected
        start = min(r["start"] for r in reports)
        acked = max(r["acked"] for r in reports)
        window = visible - start
        cpu["producers"] = sum(r["cpu_s"] for r in reports)
        return {
            "mode": mode,
            "producers": len(jobs),
            "points": expected,
            "exact_count": exact,
            "producer_s": round(acked - start, 3),
            "end_to_end_s": round(window, 3),
            "producer_points_per_s": round(expected / (acked - start)),
            "end_to_end_points_per_s": round(expected / window),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "cpu_share_of_2_cores": {k: f"{v / (2 * window):.0%}" for k, v in cpu.items()},
            "server_events": {k: events[k] for k in SERVER_EVENTS if k in events},
        }

    def spy(self, pid: int | None, name: str, idle: bool = False) -> subprocess.Popen[bytes]:
        out = self.workdir / f"{name}.pyspy.txt"
        cmd = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--output", str(out)]
        return subprocess.Popen([*cmd, "--nonblocking", *(["--idle"] if idle else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def latency(self, samples: int, load_rate: float) -> dict[str, Any]:
        """Probe: log one point, flush (Kafka acked), then poll the read query until the point shows."""
        jobs = [self.job("arrays", 10**12, load_rate / self.args.producers) for _ in range(self.args.producers)] if load_rate else []
        before = self.count()
        with runstream.start_run(experiment="bench", tracking_uri=f"kafka://{self.kafka.bootstrap}") as run, self.producers(jobs) if jobs else _nothing():
            run.flush()
            acked, visible = [], []
            for i in range(samples + 1):
                t0 = time.perf_counter()
                run.log_metrics({"probe": 1.0 + i}, step=i)
                run.flush()
                t1 = time.perf_counter()
                while i not in set(metric_history(self.sql, run.run_id, "probe", samples + 1, None).steps.tolist()):
                    if time.perf_counter() - t0 > self.args.timeout:
                        raise TimeoutError(f"probe point {i} not visible after {self.args.timeout} s")
                    time.sleep(0.002)
                t2 = time.perf_counter()
                if i:  # the first one warms up
                    acked.append(t1 - t0)
                    visible.append(t2 - t0)
                time.sleep(0.05 + 0.05 * np.random.random())  # do not beat in time with the projector
            load = (self.count() - before) / (time.perf_counter() - t0 + 1e-9) if False else None
        ms = lambda xs, q: round(float(np.percentile(xs, q)) * 1000, 1)  # noqa: E731
        return {
            "background_points_per_s": round(load_rate),
            "samples": samples,
            "acked_ms": {"p50": ms(acked, 50), "p99": ms(acked, 99)},
            "queryable_ms": {"p50": ms(visible, 50), "p99": ms(visible, 99), "max": ms(visible, 100)},
        }
