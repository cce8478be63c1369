"""Start and stop service subprocesses: own process group, log file, bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self


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


class ManagedProcess:
    """A service run as a subprocess: stop, kill and restart by PID. Subclasses start it (setting
    `_proc`) and name `log_file`, whose tail goes into assertion messages."""

    stop_grace = 20.0
    log_file: Path

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the process (also its process group id), None when stopped."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def start(self, timeout: float) -> None:
        raise NotImplementedError

    def _stopped_cleanly(self, proc: subprocess.Popen[bytes], on_sigterm: bool) -> bool:
        return on_sigterm

    def stop(self, grace: float | None = None) -> bool:
        """SIGTERM, SIGKILL after `grace` s. True if it stopped cleanly. A no-op when stopped."""
        if self._proc is None:
            return True
        proc, self._proc = self._proc, None
        return self._stopped_cleanly(proc, terminate(proc, self.stop_grace if grace is None else grace))

    def kill(self) -> None:
        """SIGKILL at once, like a crash."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            kill(proc)

    def kill9(self) -> None:
        self.kill()

    def restart(self, *, hard: bool = False, timeout: float = 90.0) -> None:
        """Stop (SIGTERM, or SIGKILL if hard), start again on the same ports and data."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_file, lines)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
