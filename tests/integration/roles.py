"""runstream roles as real subprocesses, for the integration tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.services.ports import free_port
from tests.services.process import ManagedProcess, spawn, wait_until

REPO = Path(__file__).resolve().parents[2]


class Role(ManagedProcess):
    """One `python -m runstream <role> ...` process; ready once its log says where it listens."""

    stop_grace = 60.0

    def __init__(
        self,
        workdir: Path,
        role: str,
        *args: str,
        env: dict[str, str] | None = None,
        python: Path | None = None,
        tree: Path = REPO,
    ) -> None:
        super().__init__()
        self.python = python or Path(sys.executable)
        self.role = role
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.tree = tree  # the checkout whose runstream runs (`python -m` imports from the working dir)
        self.log_file = workdir / f"{role}-{free_port()}.log"
        self.start()

    def start(self, timeout: float = 90.0) -> None:
        start = self.log_file.stat().st_size if self.log_file.exists() else 0
        proc = self._proc = spawn(
            [str(self.python), "-m", "runstream", self.role, *self.args],
            cwd=self.tree,
            log_path=self.log_file,
            env=self.env,
        )

        def ready() -> bool:
            text = self.log_file.read_bytes()[start:].decode(errors="replace")
            return " listening on " in text or " consuming " in text

        wait_until(ready, proc=proc, what=f"runstream {self.role}", timeout=timeout, logs=[self.log_file])
