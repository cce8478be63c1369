"""`runstream import mlflow SOURCE --to URI`: argparse, not the server's click CLI, so that it runs
where the client and `mlflow` are installed (pip install runstream mlflow), beside training code."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

from runstream.mlflow_api.importer.importer import SEND_RUNS, MlflowImport, Report, SourceUnavailable, State

USAGE = """Brings an MLflow store into runstream: experiments, runs (ids kept), params, tags, every metric
point, dataset inputs, artifacts, logged models and the model registry. SOURCE is an MLflow tracking server
(http://host:5000) or its backend store (sqlite:///mlflow.db, postgresql://..., a mlruns folder).
Started again, an interrupted import carries on; a finished one changes nothing."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runstream import mlflow", description=USAGE)
    parser.add_argument("source", help="MLflow tracking URI to read")
    parser.add_argument(
        "--to",
        default=os.environ.get("RUNSTREAM_TRACKING_URI", "http://127.0.0.1:5000"),
        help="runstream to write into (default: $RUNSTREAM_TRACKING_URI or http://127.0.0.1:5000)",
    )
    parser.add_argument(
        "--artifacts",
        choices=["copy", "reference"],
        default="copy",
        help="copy the files into runstream's artifact store, or keep the runs pointing at MLflow's locations",
    )
    parser.add_argument(
        "--runs-per-send",
        type=int,
        default=SEND_RUNS,
        help="runs written (and recorded as done) together; 1 records each run as soon as it is in",
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="the progress file (default: beside you, named by SOURCE)"
    )
    return parser


class _Line:
    """One progress line on stderr: runs, points, rates and the time left."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, points: int) -> None:
        seconds = max(time.monotonic() - self.started, 1e-3)
        left = (total - done) * seconds / done if done else 0.0
        sys.stderr.write(
            f"\rimport: {done:,}/{total:,} runs, {points:,} metric points · {done / seconds:,.1f} runs/s, "
            f"{points / seconds:,.0f} points/s · {time.strftime('%H:%M:%S', time.gmtime(left))} left "
        )
        sys.stderr.flush()


def _summary(report: Report) -> str:
    rows = [f"{'':<20}{'MLflow':>14}{'runstream':>14}"]
    for name, value in vars(report.source).items():
        got = getattr(report.runstream, name)
        rows.append(f"{name.replace('_', ' '):<20}{value:>14,}{got:>14,}{'' if got == value else '  ≠'}")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if argv[:1] != ["mlflow"]:
        print("usage: runstream import mlflow SOURCE [--to URI] (the only source kind is MLflow)", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv[1:])
    name = hashlib.sha256(args.source.encode()).hexdigest()[:12]
    state = State.load(args.state or Path(f"runstream-import-{name}.json"))
    try:
        importer = MlflowImport(args.source, args.to, args.artifacts, state, _Line(), max(1, args.runs_per_send))
        report = importer.run()
    except ModuleNotFoundError as exc:
        if exc.name != "mlflow":
            raise
        print("runstream import mlflow reads through MLflow's client: pip install mlflow", file=sys.stderr)
        return 2
    except SourceUnavailable as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: {len(state.done):,} runs are in runstream; the same command carries on "
            f"(progress in {state.path})",
            file=sys.stderr,
        )
        return 130
    print(f"\nimported {report.imported_runs:,} runs in {report.seconds:.1f} s (progress in {state.path})")
    print(_summary(report))
    if not report.complete:
        print("runstream does not hold everything the source does (≠ above): run the import again", file=sys.stderr)
        return 1
    return 0
