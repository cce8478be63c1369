"""A venv holding one pinned MLflow client, made on first use per requirements file (keyed by its
hash) under ~/.cache/runstream-test/, so MLflow is never a dependency of the project's venv."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "runstream-test"


def client_python(requirements: Path) -> Path:
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = CACHE / f"{requirements.stem}-{digest}"
    done = venv / ".installed"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        done.write_text(requirements.read_text())
    return venv / "bin" / "python"
