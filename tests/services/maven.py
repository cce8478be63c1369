"""Jars from Maven Central for the tests: a pom.xml that only lists dependencies, copied by Maven into a
cache folder once per pom content (machines and checkouts share ~/.cache, concurrent runs included)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.services.process import ServiceError

CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "runstream-test"


def maven_lib_dir(pom: Path, name: str, expect: str) -> Path:
    """The folder holding `pom`'s runtime jars (at least one matching the glob `expect`)."""
    key = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    root = CACHE_ROOT / name
    lib = root / key
    if (lib / ".complete").exists():
        return lib
    if shutil.which("mvn") is None:
        raise ServiceError(f"no `mvn` on PATH: it fetches the jars of {pom}")
    root.mkdir(parents=True, exist_ok=True)
    # Fill a private folder, then rename it into place: concurrent runs never see half.
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
    try:
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-Dlib.dir={tmp}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0 or not any(tmp.glob(expect)):
            raise ServiceError(f"mvn copy-dependencies failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        (tmp / ".complete").write_text(key)
        try:
            tmp.rename(lib)
        except OSError:
            if not (lib / ".complete").exists():  # else another run won the race: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lib
