"""runstream roles as real subprocesses, for the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.services.ports import free_port
from tests.services.process import kill, log_tail, spawn, terminate, wait_until

REPO = Path(__file__).resolve().parents[2]


class Role:
    """One `python -m runstream <role> ...` process; ready once its log says where it listens."""

    def __init__(self, workdir: Path, role: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.role = role
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.log = workdir / f"{role}-{free_port()}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self, timeout: float = 90.0) -> None:
        start = self.log.stat().st_size if self.log.exists() else 0
        proc = self.proc = spawn(
            [sys.executable, "-m", "runstream", self.role, *self.args], cwd=REPO, log_path=self.log, env=self.env
        )

        def ready() -> bool:
            text = self.log.read_bytes()[start:].decode(errors="replace")
            return " listening on " in text or " consuming " in text

        wait_until(ready, proc=proc, what=f"runstream {self.role}", timeout=timeout, logs=[self.log])

    def stop(self) -> bool:
        assert self.proc is not None
        return terminate(self.proc, grace=60)

    def kill9(self) -> None:
        assert self.proc is not None
        kill(self.proc)

    def tail(self) -> str:
        return log_tail(self.log)
