"""Test and benchmark files of pseudo-random bytes (incompressible, reproducible by seed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

BLOCK = 16 * 1024 * 1024


def random_file(path: Path, size: int, seed: int = 0) -> str:
    """Writes `size` bytes block by block (never the whole file in memory); returns their sha256."""
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for start in range(0, size, BLOCK):
            block = rng.integers(0, 256, min(BLOCK, size - start), dtype=np.uint8).tobytes()
            digest.update(block)
            f.write(block)
    return digest.hexdigest()
