"""SDK producer processes for the ingest benchmarks: each logs metric points into Kafka through
`runstream` as a training job would, and reports when Kafka acknowledged them and its own CPU time."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier, Event
from typing import Any

import numpy as np

import runstream

KEYS = ["loss", "acc", "lr", "grad_norm", "throughput", "mem", "val_loss", "val_acc"]


@dataclass(frozen=True)
class Job:
    """What one producer process does (picklable: it crosses into a spawned process)."""

    bootstrap: str
    topic_prefix: str
    run_ids: tuple[str, ...]  # points go to these runs in turn, chunk by chunk (one run per partition key)
    mode: str  # "arrays": log_metric_arrays in chunks; "steps": log_metrics({...}, step=...) per step
    points: int  # in all, over the runs
    chunk: int
    keys: int
    rate: float = 0.0  # points/s to pace at; 0 = as fast as possible
    curve: str = "ramp"  # "ramp": each chunk a straight line; "loss": a noisy decaying loss, as training logs it

    @property
    def expected(self) -> int:
        """The points it logs: the per-step path logs whole steps of every key."""
        return self.points // self.keys * self.keys if self.mode == "steps" else self.points


def _values(curve: str, first: int, n: int, rng: np.random.Generator) -> np.ndarray:
    steps = np.arange(first, first + n, dtype=np.float64)
    if curve == "loss":  # computed in float32, as on an accelerator, logged as Python floats (float64)
        loss = 2.0 * np.exp(-steps / 500_000) + 0.1 + rng.normal(0.0, 0.01, n)
        return loss.astype(np.float32).astype(np.float64)
    return np.linspace(0.0, 1.0, n) + first


def produce(job: Job, ready: Barrier, stop: Event, results: mp.Queue[dict[str, Any]]) -> None:
    os.environ["RUNSTREAM_TOPIC_PREFIX"] = job.topic_prefix
    keys = KEYS[: job.keys]
    uri = f"kafka://{job.bootstrap}"
    runs = [runstream.start_run(experiment="bench", run_id=run_id, tracking_uri=uri) for run_id in job.run_ids]
    for run in runs:
        run.flush()  # connected and the topic known: the clock starts after this
    rng = np.random.default_rng(len(job.run_ids))
    ready.wait()
    start, cpu = time.time(), time.process_time()
    sent = 0
    if job.mode == "arrays":
        for i, first in enumerate(range(0, job.points, job.chunk)):
            n = min(job.chunk, job.points - first)
            run = runs[i % len(runs)]
            step = i // len(runs) * job.chunk  # each run's steps go on from where its last chunk ended
            run.log_metric_arrays(keys[i % len(keys)], _values(job.curve, step, n, rng), np.arange(step, step + n))
            sent += n
            if job.rate:
                time.sleep(max(0.0, start + sent / job.rate - time.time()))
            if stop.is_set():
                break
    else:
        for step in range(job.points // len(keys)):
            runs[step % len(runs)].log_metrics({key: step + j / 8 for j, key in enumerate(keys)}, step=step)
        sent = job.expected
    for run in runs:
        run.flush()  # returns once Kafka acknowledged everything
    acked, cpu = time.time(), time.process_time() - cpu
    for run in runs:
        run.end()
    results.put({"run_ids": job.run_ids, "points": sent, "start": start, "acked": acked, "cpu_s": cpu})


@contextmanager
def producers(jobs: list[Job], finish: bool = False) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    """One process per job; yields their pids once all are connected and start producing, and a list
    that holds their reports after the block (a block that returns early sets their stop event,
    unless `finish`: then every job logs all of its points first)."""
    ctx = mp.get_context("spawn")
    ready, stop, queue = ctx.Barrier(len(jobs) + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=produce, args=(job, ready, stop, queue)) for job in jobs]
    reports: list[dict[str, Any]] = []
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=120)
        yield [p.pid or 0 for p in procs], reports
        if not finish:
            stop.set()
        reports.extend(queue.get(timeout=None if finish else 120) for _ in jobs)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
