"""Venvs of other libraries than the project's (an MLflow client, the training frameworks), made on
first use per requirements file, keyed by its hash, under ~/.cache/runstream-test/: those libraries
are never dependencies of the project's venv, and a build of several GB is paid once per machine.
A cached venv is never changed after its build: checkouts on one machine share it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Sequence
from pathlib import Path

REPO_TESTS = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "runstream-test"
# uv (a test dependency) downloads in parallel: torch's CUDA wheels in a fraction of pip's time.
UV = Path(sys.executable).parent / "uv"


def install(python: Path, *args: str) -> None:
    subprocess.run([str(UV), "pip", "install", "-q", "--python", str(python), *args], check=True, timeout=1800)


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    return path / "bin" / "python"


def site_packages(venv_python: Path) -> Path:
    venv = venv_python.parent.parent
    return venv / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)


def cached_python(requirements: Path) -> Path:
    """The Python of a venv holding `requirements`; built once, by whoever asks first (a lock:
    other checkouts and sessions on this machine share the cache)."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = CACHE / f"{requirements.parent.name}-{requirements.stem}-{digest}"
    python, done = venv / "bin" / "python", venv / ".installed"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            install(new_venv(venv), "-r", str(requirements))
            done.write_text(requirements.read_text())
    return python


def prebuild(requirements: Sequence[Path]) -> threading.Thread:
    """Builds the cached venvs of `requirements` one after another on a thread, while the tests that
    come first run: on a new machine their builds (minutes, mostly downloads) overlap that work
    instead of adding to it. A test that needs one still being built waits for it (the lock above);
    one whose build failed here is built again by the test, which then reports the failure."""
    thread = threading.Thread(target=_build_each, args=(requirements,), name="venv-prebuild", daemon=True)
    thread.start()
    return thread


def _build_each(requirements: Sequence[Path]) -> None:
    for each in requirements:
        cached_python(each)


def layered_python(path: Path, base: Path, *requirements: str) -> Path:
    """A fresh venv at `path` holding `requirements` (e.g. this checkout's wheel) that also sees the
    cached venv `base`'s packages (a .pth line, read after its own): a per-session install over a
    shared, unchanged build."""
    python = new_venv(path)
    install(python, *requirements)
    (site_packages(python) / "_cached_base.pth").write_text(f"{site_packages(base)}\n")
    return python


def joined_python(path: Path, *bases: Path) -> Path:
    """A venv at `path` with no packages of its own that sees the venvs of the Pythons `bases`, in
    that order (.pth lines): libraries installed side by side without an install."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    (site_packages(python) / "_joined.pth").write_text("".join(f"{site_packages(base)}\n" for base in bases))
    return python
