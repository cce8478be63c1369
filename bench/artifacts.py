"""Artifact throughput on a real S3 server (SeaweedFS `weed mini` on 127.0.0.1): one large file up and
down through the SDK, directly with credentials and through the server's presigned URLs, beside plain
boto3 transfers with `aws s3 cp`'s defaults (8 MiB parts, 10 concurrent requests) as the ceiling.

    .venv/bin/python -m bench.artifacts [--size-mb 1024] [--repeats 2] [--keep]

The SDK figures include what the ceiling skips: sha256 of every byte (upload: while reading; download:
checked against the recorded digest), the API round trips, and the ArtifactLogged event. The SDK
process, `runstream serve` and SeaweedFS share this machine's cores; the file stays in the page cache.
Results go to bench/results/artifacts.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

import runstream
from bench.report import run_and_save
from runstream.artifacts.s3 import S3Store
from runstream.schemas.artifact_paths import run_prefix
from tests.artifacts.conftest import start_serve
from tests.artifacts.files import random_file
from tests.services.process import cpu_seconds
from tests.services.s3_server import start_seaweedfs

RESULTS = Path(__file__).resolve().parent / "results" / "artifacts.json"
MiB = 1024 * 1024
AWS_CLI = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=10)


MODES = ("direct", "presigned")


def sdk_mode(mode: str, root: str) -> None:
    """The SDK uploads to S3 itself when it knows the artifact root (direct), else by presigned URLs."""
    if mode == "direct":
        os.environ["RUNSTREAM_ARTIFACT_ROOT"] = root
    else:
        os.environ.pop("RUNSTREAM_ARTIFACT_ROOT", None)


def timed(size: int, pids: dict[str, int], fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Wall time, throughput and CPU seconds (the caller, each service) of fn(*args)."""
    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    own = time.process_time()
    start = time.perf_counter()
    fn(*args)
    seconds = time.perf_counter() - start
    used = {name: round(cpu_seconds(pid) - cpu[name], 1) for name, pid in pids.items()}
    return {
        "s": round(seconds, 2),
        "mb_per_s": round(size / MiB / seconds, 1),
        "cpu_s": {"caller": round(time.process_time() - own, 1), **used},
    }


def run_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    size = args.size_mb * MiB
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    with ExitStack() as stack:
        s3 = start_seaweedfs(workdir / "s3", "bench-access", "bench-secret-key")
        stack.callback(s3.stop)
        bucket = s3.new_bucket()
        root = f"s3://{bucket}/bench"
        env = s3.env()
        os.environ.update(env)  # the SDK's direct mode and boto3 read the same variables
        os.environ.pop("RUNSTREAM_ARTIFACT_ROOT", None)
        url, serve = start_serve(workdir / "serve", {**os.environ, "RUNSTREAM_ARTIFACT_ROOT": root})
        stack.callback(serve.stop)
        assert s3.pid is not None and serve.pid is not None
        pids = {"seaweedfs": s3.pid, "serve": serve.pid}
        source = workdir / "big.bin"
        sha = random_file(source, size)
        boto = s3.client()
        store = S3Store(root, boto)
        results: dict[str, list[dict[str, Any]]] = {}

        def record(name: str, fn: Callable[..., Any], *args: Any) -> None:
            results.setdefault(name, []).append(timed(size, pids, fn, *args))
            print(name, results[name][-1], flush=True)

        for _ in range(args.repeats):
            key = f"ceiling/{uuid.uuid4().hex}"
            dest = workdir / "down.bin"
            record("boto3 upload_file (ceiling)", boto.upload_file, str(source), bucket, key, None, None, AWS_CLI)
            record("boto3 download_file (ceiling)", boto.download_file, bucket, key, str(dest), None, None, AWS_CLI)
            dest.unlink()
            boto.delete_object(Bucket=bucket, Key=key)
            for mode in MODES:
                sdk_mode(mode, root)
                with runstream.start_run(experiment="bench", tracking_uri=url) as run:
                    record(f"SDK upload, {mode}", run.log_artifact, source)
                token = run.end()
                client = runstream.Client(url)
                client.get_run(run.run_id, after=token)
                record(f"SDK download, {mode}", client.download_artifacts, run.run_id, source.name, dest)
                assert client.list_artifacts(run.run_id)[0]["sha256"] == sha
                dest.unlink()
                client.close()
                store.delete_prefix(run_prefix(run.run_id))  # frees the disk between rounds
        small = small_files(args.files, workdir, url, root)
        os.environ.pop("RUNSTREAM_ARTIFACT_ROOT", None)

    best = {name: max(r["mb_per_s"] for r in runs) for name, runs in results.items()}

    def ceiling(name: str) -> str:
        return f"boto3 {'upload_file' if 'upload' in name else 'download_file'} (ceiling)"

    # Per round too: the SDK against the ceiling measured minutes apart under the same load.
    ratios = {name: round(best[name] / best[ceiling(name)], 2) for name in best if name.startswith("SDK")}
    round_ratios = {
        name: [
            round(r["mb_per_s"] / c["mb_per_s"], 2) for r, c in zip(results[name], results[ceiling(name)], strict=True)
        ]
        for name in ratios
    }
    return {
        "settings": {
            "size_mb": args.size_mb,
            "repeats": args.repeats,
            "files": args.files,
            "cores": os.cpu_count(),
            "load_average_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
        },
        "runs": results,
        "best_mb_per_s": best,
        "median_mb_per_s": {name: statistics.median(r["mb_per_s"] for r in runs) for name, runs in results.items()},
        "sdk_vs_ceiling": ratios,
        "sdk_vs_ceiling_per_round": round_ratios,
        "small_files_per_s": small,
    }


def small_files(count: int, workdir: Path, url: str, root: str) -> dict[str, float]:
    """A folder of `count` 16 KiB files up (log_artifacts) and down (download_artifacts), files/s."""
    folder = workdir / "small"
    for i in range(count):
        (folder / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 10}" / f"f{i}.bin").write_bytes(os.urandom(16 * 1024))
    out: dict[str, float] = {}
    for mode in MODES:
        sdk_mode(mode, root)
        with runstream.start_run(experiment="bench", tracking_uri=url) as run:
            start = time.perf_counter()
            run.log_artifacts(folder)
            out[f"SDK upload, {mode}"] = round(count / (time.perf_counter() - start))
        with runstream.Client(url) as client:
            client.get_run(run.run_id, after=run.end())
            start = time.perf_counter()
            client.download_artifacts(run.run_id, "", workdir / f"small-{mode}")
            out[f"SDK download, {mode}"] = round(count / (time.perf_counter() - start))
        print(f"{count} small files", out, flush=True)
    return out


def table(results: dict[str, Any]) -> str:
    rows = [("figure (best of repeats)", "MB/s", "vs ceiling (per round)")]
    for name, value in results["best_mb_per_s"].items():
        per_round = " ".join(f"{r:.2f}" for r in results["sdk_vs_ceiling_per_round"].get(name, []))
        rows.append((name, f"{value:,.0f}", f"{results['sdk_vs_ceiling'].get(name, 1.0):.2f}x ({per_round})"))
    files = f"{results['settings']['files']:,} files of 16 KiB"
    rows += [(f"{name}, {files}", f"{v:,.0f}/s", "") for name, v in results["small_files_per_s"].items()]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:>8}  {c}" for a, b, c in rows) + f"\nsettings: {results['settings']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every measurement")
    parser.add_argument("--files", type=int, default=1000, help="small files in the folder phase")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    run_and_save("runstream-bench-artifacts-", RESULTS, lambda workdir: run_bench(args, workdir), args.keep, table)


if __name__ == "__main__":
    main()
