"""`runstream serve`'s memory under steady use: one training job after another logs metrics, params and
tags through the SDK while a dashboard-like reader searches, compares and reads histories, for
`--seconds` (an hour by default). Resident memory (serve's VmRSS: the API, the projector, the embedded
ClickHouse and the embedded log all live in that process) is sampled every `--sample-s`; after the
warm-up (caches filling) it must stay flat: the bench prints its trend in MiB per hour and the read
latency per tenth of the run.

    .venv/bin/python -m bench.soak [--seconds 3600] [--steps-per-s 250] [--run-s 60] [--write-s S]

Each job is one run of `--run-s` seconds logging 4 keys per step at `--steps-per-s` steps/s, with 5
params and 3 tags. The reader, once a second: search the experiment ordered by a metric (100 runs), a
downsampled history of the running job, a comparison of the last 10 runs, and the running job's run.
With `--write-s`, the jobs stop after that many seconds and the reader goes on alone over data that
no longer grows (set `--warmup-s` to it to take the trend of the reads alone). Results:
bench/results/soak.json, or `--results`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

import runstream
from bench.backlog import MIB, rss_bytes, status_bytes
from bench.report import run_and_save
from tests.integration.roles import Role
from tests.services.ports import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
KEYS = ("loss", "acc", "lr", "grad_norm")
EXPERIMENT = "soak"
RSS_PARTS = ("RssAnon", "RssFile")  # what VmRSS is made of: heaps and stacks; mapped files (libraries, the log)
OUTSIDE_ENGINE = "RssAnon outside the engine's allocator"


class Jobs(threading.Thread):
    """One run after another, each logging every key per step at a steady pace."""

    def __init__(self, url: str, args: argparse.Namespace, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.args, self.stop = url, args, stop
        self.run_ids: list[str] = []
        self.points = 0

    def run(self) -> None:
        step_s = 1.0 / self.args.steps_per_s
        while not self.stop.is_set():
            params = {f"p{i}": len(self.run_ids) % (i + 2) for i in range(5)}
            with runstream.start_run(experiment=EXPERIMENT, tracking_uri=self.url, tags={"team": "soak"}) as run:
                run.log_params(params)
                run.set_tags({"phase": "train", "seed": len(self.run_ids)})
                self.run_ids.append(run.run_id)
                started = time.monotonic()
                step = 0
                while not self.stop.is_set() and time.monotonic() - started < self.args.run_s:
                    run.log_metrics({k: math.exp(-step / 5000) * (i + 1) for i, k in enumerate(KEYS)}, step=step)
                    self.points += len(KEYS)
                    step += 1
                    time.sleep(max(0.0, started + step * step_s - time.monotonic()))


class Reader(threading.Thread):
    """A dashboard's reads, once a second; the latency of each round."""

    def __init__(self, url: str, jobs: Jobs, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.jobs, self.stop = jobs, stop
        self.client = runstream.Client(url)
        self.rounds: list[tuple[float, float]] = []  # (monotonic time, seconds the round took)
        self.errors: Counter[str] = Counter()  # what failed a round, by kind

    def run(self) -> None:
        while not self.stop.wait(1.0):
            if not self.jobs.run_ids:
                continue
            began = time.monotonic()
            try:
                experiment = self.client.get_experiment_by_name(EXPERIMENT)
                if experiment is None:
                    continue
                self.client.search_runs([experiment["experiment_id"]], order_by=["metrics.loss ASC"], max_results=100)
                current = self.jobs.run_ids[-1]
                self.client.get_metric_history(current, "loss", max_points=500)
                self.client.compare_runs(self.jobs.run_ids[-10:], ["loss"], max_points=500)
                self.client.get_run(current)
            except Exception as exc:
                self.errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                continue
            self.rounds.append((began, time.monotonic() - began))


def engine_memory(url: str) -> dict[str, int]:
    """serve's embedded engine's memory by kind (bytes), from its /metrics."""
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text)
    return {
        s.labels["kind"]: int(s.value)
        for family in families
        if family.name == "runstream_engine_memory_bytes"
        for s in family.samples
    }


def _memory_figures(samples: list[tuple[float, int]], warmup_s: float, seconds: float) -> dict[str, Any]:
    """After warm-up, at the end, the peak and the trends of one memory series."""
    warm = [s for s in samples if s[0] >= warmup_s]
    return {
        "after_warmup": round(warm[0][1] / MIB),
        "end": round(samples[-1][1] / MIB),
        "peak": round(max(r for _, r in samples) / MIB),
        "trend_after_warmup_mib_per_hour": _trend_mib_per_hour(warm),
        "trend_second_half_mib_per_hour": _trend_mib_per_hour([s for s in samples if s[0] >= seconds / 2]),
        "over_time": {f"{int(t)}s": round(r / MIB) for t, r in samples[:: max(1, len(samples) // 12)]},
    }


def _trend_mib_per_hour(samples: list[tuple[float, int]]) -> float:
    t = np.array([s for s, _ in samples])
    rss = np.array([r for _, r in samples], dtype=np.float64) / MIB
    slope = np.polyfit(t, rss, 1)[0] if len(samples) > 1 else 0.0
    return round(float(slope) * 3600, 1)


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Role(workdir, "serve", "--port", str(port), "--data-dir", str(workdir / "data"))
    assert serve.pid is not None
    stop, writes_stop = threading.Event(), threading.Event()
    jobs = Jobs(url, args, writes_stop)
    reader = Reader(url, jobs, stop)
    samples: list[tuple[float, int]] = []
    engine: dict[str, list[tuple[float, int]]] = {}  # kind -> samples
    parts: dict[str, list[tuple[float, int]]] = {}  # RSS_PARTS -> samples
    start = time.monotonic()
    try:
        jobs.start()
        reader.start()
        while (elapsed := time.monotonic() - start) < args.seconds:
            if args.write_s is not None and elapsed >= args.write_s:
                writes_stop.set()  # the reader goes on over data that no longer grows
            samples.append((elapsed, rss_bytes(serve.pid)))
            for part in RSS_PARTS:
                parts.setdefault(part, []).append((elapsed, status_bytes(serve.pid, part)))
            for kind, value in engine_memory(url).items():
                engine.setdefault(kind, []).append((elapsed, value))
            if len(samples) % 30 == 0:
                rss, tracked = samples[-1][1] / MIB, engine["tracked"][-1][1] / MIB
                print(
                    f"  {elapsed:.0f} s: RSS {rss:.0f} MiB (engine {tracked:.0f}), {jobs.points:,} points", flush=True
                )
            time.sleep(args.sample_s)
    finally:
        stop.set()
        writes_stop.set()
        jobs.join(timeout=120)
        reader.join(timeout=120)
        serve.stop()
    # What is left of the anonymous memory once the engine's allocator is taken out: Python's and
    # glibc's heaps, thread stacks (one loop samples both, tens of milliseconds apart: a noisy series).
    parts[OUTSIDE_ENGINE] = [
        (t, anon - resident)
        for (t, anon), (_, resident) in zip(parts["RssAnon"], engine["allocator_resident"], strict=True)
    ]
    tenths = []
    for tenth in range(10):
        lo, hi = start + args.seconds * tenth / 10, start + args.seconds * (tenth + 1) / 10
        took = [took for began, took in reader.rounds if lo <= began < hi]
        tenths.append(round(statistics.median(took) * 1000, 1) if took else None)
    return {
        "settings": {**vars(args), "results": str(args.results)},
        "uptime_before": args.uptime,
        "uptime_after": os.popen("uptime").read().strip(),
        "runs": len(jobs.run_ids),
        "points": jobs.points,
        "read_rounds": len(reader.rounds),
        "read_errors": sum(reader.errors.values()),
        "read_errors_by_kind": dict(reader.errors.most_common(5)),
        "rss_mib": _memory_figures(samples, args.warmup_s, args.seconds),
        "rss_parts_mib": {part: _memory_figures(series, args.warmup_s, args.seconds) for part, series in parts.items()},
        # The engine's part of that RSS (serve's /metrics), by kind: where growth comes from.
        "engine_mib": {kind: _memory_figures(series, args.warmup_s, args.seconds) for kind, series in engine.items()},
        "read_round_p50_ms_per_tenth": tenths,
    }


def summary(results: dict[str, Any]) -> str:
    rss = results["rss_mib"]
    return "\n".join(
        [
            f"{results['settings']['seconds']} s: {results['runs']} runs, {results['points']:,} points, "
            f"{results['read_rounds']} read rounds ({results['read_errors']} errors)",
            f"serve RSS: {rss['after_warmup']} MiB after warm-up, {rss['end']} MiB at the end, peak {rss['peak']} MiB; "
            f"trend {rss['trend_after_warmup_mib_per_hour']} MiB/h after warm-up, "
            f"{rss['trend_second_half_mib_per_hour']} MiB/h in the second half",
            f"RSS over time (MiB): {rss['over_time']}",
            *(
                f"{what}: {e['after_warmup']} MiB after warm-up, {e['end']} at the end, "
                f"trend {e['trend_after_warmup_mib_per_hour']} MiB/h "
                f"({e['trend_second_half_mib_per_hour']} in the second half)"
                for what, e in [
                    *results.get("rss_parts_mib", {}).items(),
                    *((f"engine {kind}", e) for kind, e in results.get("engine_mib", {}).items()),
                ]
            ),
            f"read round p50 per tenth of the run (ms): {results['read_round_p50_ms_per_tenth']}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3600.0, help="how long to log and read")
    parser.add_argument("--steps-per-s", type=float, default=250.0, help="steps a job logs per second (4 keys each)")
    parser.add_argument("--run-s", type=float, default=60.0, help="seconds each job (run) lasts")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--warmup-s", type=float, default=300.0, help="seconds before the trend is taken")
    parser.add_argument(
        "--write-s", type=float, help="seconds the jobs log for, then only the reader goes on (default: all along)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the results are written")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    args.uptime = os.popen("uptime").read().strip()
    run_and_save("runstream-soak-", args.results, lambda workdir: run_bench(args, workdir), args.keep, summary)


if __name__ == "__main__":
    main()
