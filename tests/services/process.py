"""Start and stop service subprocesses: own process group, log file, bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A service failed to start or stop; the message carries its log tail."""


def spawn(
    cmd: Sequence[str | Path],
    *,
    cwd: Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session (its group can be signalled by PID), output to log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        # The child keeps its own copy of the descriptor; ours can close right away.
        return subprocess.Popen(
            [str(c) for c in cmd],
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # start_new_session=True made the child a group leader, so its PID is the group id:
    # this reaches any helper processes it started as well.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def terminate(proc: subprocess.Popen[bytes], grace: float) -> bool:
    """SIGTERM the group, SIGKILL after `grace` s. True if it exited on SIGTERM."""
    if proc.poll() is not None:
        return True
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        pass
    # Still alive and not reaped, so its PID (= group id) cannot have been reused.
    _signal_group(proc, signal.SIGKILL)
    proc.wait(timeout=10)
    return False


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group at once (a crash, for restart tests) and reap it."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGKILL)
    proc.wait(timeout=10)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool],
    *,
    proc: subprocess.Popen[bytes],
    what: str,
    timeout: float,
    logs: Sequence[Path],
    interval: float = 0.1,
) -> None:
    """Poll `ready` until True; raise with the logs' tails on timeout or early exit."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            problem = f"{what} exited with code {proc.returncode} before it was ready"
            break
        if ready():
            return
        if time.monotonic() > deadline:
            problem = f"{what} not ready after {timeout:.0f} s"
            break
        time.sleep(interval)
    raise ServiceError(problem + "".join(f"\n--- {p}:\n{log_tail(p)}" for p in logs))
