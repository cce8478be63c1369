"""What every bench script does around its measurements: a throwaway work dir, then the results
saved under bench/results/ and summarized on stdout."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def _as_json(results: Results) -> str:
    return json.dumps(results, indent=2)


def run_and_save(
    prefix: str,
    path: Path,
    bench: Callable[[Path], Results],
    keep: bool = False,
    summary: Callable[[Results], str] = _as_json,
) -> Results:
    """Runs bench(workdir) in a fresh temp dir (removed after unless `keep`), writes its results to
    `path` and prints `summary` of them."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        results = bench(workdir)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    print(f"\nwritten to {path}" + (f"; work dir {workdir}" if keep else ""))
    return results
